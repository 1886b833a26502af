"""Kubernetes service-account tokens: the service account the `kubernetes.io` claim names.

A projected service-account token (Kubernetes 1.21+) carries, besides `iss`, `aud` and `exp`:

    "sub": "system:serviceaccount:<namespace>:<name>",
    "kubernetes.io": {"namespace": "<namespace>", "serviceaccount": {"name": "<name>", ...}, ...}

The identity is the service account, named as the API server names it, in the groups the API
server puts every service account in ("system:serviceaccounts" and
"system:serviceaccounts:<namespace>", Kubernetes authentication docs, "Service account tokens").
The older, secret-based tokens carry no `kubernetes.io` claim and are refused (missing_claim).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from proxy.config.addresses import service_account
from proxy.config.model import IssuerSettings
from proxy.config.values import InvalidValueError
from proxy.errors import InvalidToken
from proxy.identity.principal import CredentialSource, Principal
from proxy.reasons import TokenFailure

USER_PREFIX: Final = "system:serviceaccount:"
_ALL_SERVICE_ACCOUNTS: Final = "system:serviceaccounts"


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    namespace: str
    name: str

    @property
    def user(self) -> str:
        """`system:serviceaccount:<namespace>:<name>`, the API server's user name for it."""
        return f"{USER_PREFIX}{self.namespace}:{self.name}"

    @property
    def qualified(self) -> str:
        """`<namespace>/<name>`, as the `service_accounts` condition lists it."""
        return f"{self.namespace}/{self.name}"

    @property
    def groups(self) -> frozenset[str]:
        return frozenset({_ALL_SERVICE_ACCOUNTS, f"{_ALL_SERVICE_ACCOUNTS}:{self.namespace}"})


def service_account_of(claims: Mapping[str, Any]) -> ServiceAccount:
    """The service account verified claims name; raises InvalidToken when they name none."""
    scope = claims.get("kubernetes.io")
    if not isinstance(scope, Mapping):
        raise InvalidToken(TokenFailure.MISSING_CLAIM)
    account = scope.get("serviceaccount")
    namespace = scope.get("namespace")
    name = account.get("name") if isinstance(account, Mapping) else None
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise InvalidToken(TokenFailure.MISSING_CLAIM)
    found = _checked(namespace, name)
    # The API server sets `sub` to the same user; a token where they differ is not one it issued.
    if claims.get("sub", found.user) != found.user:
        raise InvalidToken(TokenFailure.MALFORMED)
    return found


def service_account_of_user(user: str) -> ServiceAccount | None:
    """The service account a user name `system:serviceaccount:<namespace>:<name>` names."""
    if not user.startswith(USER_PREFIX):
        return None
    namespace, separator, name = user.removeprefix(USER_PREFIX).partition(":")
    if not separator:
        return None
    try:
        return _checked(namespace, name)
    except InvalidToken:
        return None


def kubernetes_principal(
    claims: Mapping[str, Any], settings: IssuerSettings, expires_at: float
) -> Principal:
    """The service account's identity; raises InvalidToken when the claims name none."""
    account = service_account_of(claims)
    return Principal(
        user=account.user,
        email=None,
        groups=account.groups,
        claims=MappingProxyType(dict(claims)),
        source=CredentialSource.BEARER,
        expires_at=expires_at,
        service_account=account.qualified,
        issuer=settings.name,
    )


def _checked(namespace: str, name: str) -> ServiceAccount:
    try:
        service_account(f"{namespace}/{name}")
    except InvalidValueError:
        raise InvalidToken(TokenFailure.MALFORMED) from None
    if name == "*":
        raise InvalidToken(TokenFailure.MALFORMED)
    return ServiceAccount(namespace, name)
