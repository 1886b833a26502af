"""Kubernetes service-account tokens' claims to the service account they name."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.model import IssuerKind, IssuerSettings
from proxy.errors import InvalidToken
from proxy.identity.issuers.kubernetes import (
    kubernetes_principal,
    service_account_of,
    service_account_of_user,
)
from proxy.reasons import TokenFailure


def projected_claims(
    namespace: Any = "payments", name: Any = "frontend", **extra: Any
) -> dict[str, Any]:
    """The claims of a projected token as the API server issues them (Kubernetes 1.21+)."""
    return {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "aud": ["idgate"],
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "exp": 2_000_000_000,
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": "frontend-7d9c", "uid": "3b1f"},
            "serviceaccount": {"name": name, "uid": "9a2e"},
        },
        **extra,
    }


def test_the_principal_is_the_service_account_as_the_api_server_names_it() -> None:
    """User, service account and groups follow Kubernetes' own naming, so policies written
    for the cluster's RBAC mean the same here."""
    settings = IssuerSettings(name="cluster", kind=IssuerKind.KUBERNETES, audiences=("idgate",))
    principal = kubernetes_principal(projected_claims(), settings, 2e9)

    assert principal.user == "system:serviceaccount:payments:frontend"
    assert principal.service_account == "payments/frontend"
    assert principal.groups == {"system:serviceaccounts", "system:serviceaccounts:payments"}
    assert (principal.email, principal.issuer) == (None, "cluster")
    assert principal.claims["kubernetes.io"]["pod"]["name"] == "frontend-7d9c"


@pytest.mark.parametrize(
    ("claims", "failure"),
    [
        ({"sub": "system:serviceaccount:payments:frontend"}, TokenFailure.MISSING_CLAIM),
        ({"kubernetes.io": "payments"}, TokenFailure.MISSING_CLAIM),
        ({"kubernetes.io": {"namespace": "payments"}}, TokenFailure.MISSING_CLAIM),
        (
            {"kubernetes.io": {"namespace": "payments", "serviceaccount": {"name": 7}}},
            TokenFailure.MISSING_CLAIM,
        ),
        (projected_claims(sub="system:serviceaccount:payments:admin"), TokenFailure.MALFORMED),
        (projected_claims(namespace="Payments"), TokenFailure.MALFORMED),
        (projected_claims(name="*"), TokenFailure.MALFORMED),
        (projected_claims(name="a/b"), TokenFailure.MALFORMED),
        (projected_claims(namespace=""), TokenFailure.MALFORMED),
    ],
)
def test_claims_naming_no_service_account_are_refused(
    claims: dict[str, Any], failure: TokenFailure
) -> None:
    """A legacy token (no `kubernetes.io`), a `sub` naming another account, and names that
    Kubernetes would never issue are refused: none of them names one service account."""
    with pytest.raises(InvalidToken) as raised:
        service_account_of(claims)
    assert raised.value.failure is failure


@pytest.mark.parametrize(
    ("user", "qualified"),
    [
        ("system:serviceaccount:monitoring:prometheus", "monitoring/prometheus"),
        ("system:serviceaccount:monitoring", None),
        ("system:serviceaccount:monitoring:*", None),
        ("monitoring/prometheus", None),
        ("alice", None),
    ],
)
def test_a_user_name_names_a_service_account_only_in_the_api_servers_form(
    user: str, qualified: str | None
) -> None:
    """`idgate explain --user` reads the service account back from its user name."""
    account = service_account_of_user(user)
    assert (None if account is None else account.qualified) == qualified
