"""An issuer's `kubernetes` and `spiffe` blocks: in-pod defaults, and each problem by key path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import (
    SERVICE_ACCOUNT_DIR,
    IssuerKind,
    KubernetesSettings,
    SpiffeSettings,
)
from proxy.config.parse_workload_issuers import parse_kubernetes, parse_spiffe
from proxy.config.reader import Context, Section

T = TypeVar("T")
Issues = Callable[..., list[str]]
IN_POD = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def parsed(
    parse: Callable[[Section], T], data: object, environ: Mapping[str, str] | None = None
) -> tuple[T, list[str]]:
    context = Context(environ or {})
    result = parse(Section(context, "issuers[0].block", data))
    return result, [str(issue) for issue in context.issues]


def test_in_a_pod_the_kubernetes_block_needs_no_settings() -> None:
    """The API server comes from the service environment Kubernetes gives every pod, the CA and
    token from the service-account volume, and TokenReview is off."""
    settings, issues = parsed(parse_kubernetes, None, IN_POD)

    assert issues == []
    assert settings == KubernetesSettings(api_server="https://10.96.0.1:443")
    assert settings.ca_file == SERVICE_ACCOUNT_DIR / "ca.crt"
    assert settings.token_file == Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    assert not settings.token_review


def test_an_ipv6_service_host_is_bracketed() -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "6443"}
    settings, issues = parsed(parse_kubernetes, {}, environ)

    assert (settings.api_server, issues) == ("https://[fd00:10:96::1]:6443", [])


def test_every_kubernetes_key_maps_onto_the_model() -> None:
    block = {
        "api_server": "https://Kubernetes.default.svc",
        "ca_file": "/etc/cluster/ca.crt",
        "token_file": "/etc/cluster/token",
        "token_review": True,
        "token_review_cache": "30s",
        "token_review_cache_size": 500,
    }
    settings, issues = parsed(parse_kubernetes, block)

    assert issues == []
    assert settings == KubernetesSettings(
        api_server="https://kubernetes.default.svc",
        ca_file=Path("/etc/cluster/ca.crt"),
        token_file=Path("/etc/cluster/token"),
        token_review=True,
        token_review_cache_seconds=30.0,
        token_review_cache_size=500,
    )


@pytest.mark.parametrize(
    ("block", "environ", "expected"),
    [
        ({}, {}, "issuers[0].block.api_server: required outside a pod"),
        ({"api_server": "http://10.0.0.1"}, {}, "issuers[0].block.api_server: must be an https"),
        ({"api_server": "https://k8s/api"}, {}, "issuers[0].block.api_server: must be scheme://"),
        ({}, {"KUBERNETES_SERVICE_HOST": "x", "KUBERNETES_SERVICE_PORT": "http"},
         "issuers[0].block.api_server: from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"),
        ({"token_review_cache": "10m"}, IN_POD, "issuers[0].block.token_review_cache: must be at"),
        ({"token_review_cache_size": 0}, IN_POD, "issuers[0].block.token_review_cache_size: must"),
        ({"token_review": "sometimes"}, IN_POD, "issuers[0].block.token_review: expected true"),
        ({"tokenreview": True}, IN_POD, "issuers[0].block.tokenreview: unknown key; did you mean"),
    ],
)  # fmt: skip
def test_each_kubernetes_problem_is_named_by_its_key_path(
    block: dict[str, Any], environ: dict[str, str], expected: str
) -> None:
    _, issues = parsed(parse_kubernetes, block, environ)

    assert any(issue.startswith(expected) for issue in issues), issues


def test_the_spiffe_block_names_one_trust_domain() -> None:
    settings, issues = parsed(parse_spiffe, {"trust_domain": "prod.example.org"})

    assert (settings, issues) == (SpiffeSettings(trust_domain="prod.example.org"), [])


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({}, "issuers[0].block.trust_domain: required"),
        ({"trust_domain": "spiffe://example.org"}, "issuers[0].block.trust_domain: expected a"),
        ({"trust_domain": "Example.org"}, "issuers[0].block.trust_domain: expected a SPIFFE"),
        ({"trust_domain": "example.org/ns"}, "issuers[0].block.trust_domain: expected a SPIFFE"),
    ],
)
def test_each_spiffe_problem_is_named_by_its_key_path(block: dict[str, Any], expected: str) -> None:
    _, issues = parsed(parse_spiffe, block)

    assert any(issue.startswith(expected) for issue in issues), issues


def test_a_kubernetes_issuer_in_a_pod_needs_only_a_name_and_audiences(
    document: dict[str, Any],
) -> None:
    """Its `iss` is learnt from discovery; its `kubernetes` block takes the pod's defaults."""
    document["issuers"] = [{"name": "cluster", "kind": "kubernetes", "audiences": ["idgate"]}]

    (issuer,) = parse_settings(document, IN_POD).issuers

    assert (issuer.kind, issuer.issuer) == (IssuerKind.KUBERNETES, None)
    assert issuer.kubernetes == KubernetesSettings(api_server="https://10.96.0.1:443")
    assert issuer.spiffe is None


def test_a_spiffe_issuer_keeps_to_the_jwt_svid_algorithms(document: dict[str, Any]) -> None:
    """JWT-SVID 2.1 leaves out EdDSA, which the default allowlist has."""
    document["issuers"] = [
        {
            "name": "mesh",
            "kind": "spiffe",
            "issuer": "https://spire.example.org",
            "jwks_uri": "https://spire.example.org/bundle",
            "audiences": ["idgate"],
            "spiffe": {"trust_domain": "example.org"},
        }
    ]

    (issuer,) = parse_settings(document, {}).issuers

    assert issuer.spiffe == SpiffeSettings(trust_domain="example.org")
    assert "EdDSA" not in issuer.algorithms
    assert issuer.algorithms


SPIFFE_ISSUER = {"name": "mesh", "kind": "spiffe", "audiences": ["idgate"]}
KUBERNETES_ISSUER = {"name": "cluster", "kind": "kubernetes", "audiences": ["idgate"]}


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        (KUBERNETES_ISSUER | {"jwks_uri": "https://keys.example.com"},
         "issuers[0].jwks_uri: not for kind kubernetes"),
        (KUBERNETES_ISSUER | {"ca_file": "/etc/ca.crt"}, "issuers[0].ca_file: not for kind"),
        (KUBERNETES_ISSUER | {"claims": {"user": "sub"}}, "issuers[0].claims: not for kind"),
        (KUBERNETES_ISSUER | {"spiffe": {"trust_domain": "a"}}, "issuers[0].spiffe: only for kind"),
        (KUBERNETES_ISSUER | {"kubernetes": {"token_review": "maybe"}},
         "issuers[0].kubernetes.token_review: expected true or false"),
        ({"name": "idp", "issuer": "https://idp.example.com", "audiences": ["a"],
          "kubernetes": {}}, "issuers[0].kubernetes: only for kind: kubernetes"),
        (SPIFFE_ISSUER, "issuers[0].spiffe.trust_domain: required"),
        (SPIFFE_ISSUER, "issuers[0].jwks_uri: required: the trust domain's bundle endpoint"),
        (SPIFFE_ISSUER | {"algorithms": ["ES256", "EdDSA"]},
         "issuers[0].algorithms: EdDSA: not a JWT-SVID algorithm"),
    ],
)  # fmt: skip
def test_each_kind_problem_is_named_by_its_key_path(
    document: dict[str, Any], issues: Issues, issuer: dict[str, Any], expected: str
) -> None:
    document["issuers"] = [issuer]

    reported = issues(document, IN_POD)

    assert any(issue.startswith(expected) for issue in reported), reported
