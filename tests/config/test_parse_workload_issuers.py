"""An issuer's `kubernetes` and `spiffe` blocks: in-pod defaults, and each problem by key path."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from proxy.config.model import SERVICE_ACCOUNT_DIR, KubernetesSettings, SpiffeSettings
from proxy.config.parse_workload_issuers import parse_kubernetes, parse_spiffe
from proxy.config.reader import Context, Section

T = TypeVar("T")
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
