"""The `tracing` section: off unless written, every key checked, the extra required."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import TraceContinuation
from proxy.config.parse_tracing import TRACING_MODULES
from tests.config.conftest import Issues


def test_tracing_is_off_without_the_section(document: dict[str, Any]) -> None:
    """No `tracing` section: no tracer is built and requests pay nothing for it."""
    assert parse_settings(document, {}).tracing is None


def test_tracing_keys_are_read(document: dict[str, Any]) -> None:
    """Endpoint, service name, ratio, headers (kept secret), continuation and user are read."""
    document["tracing"] = {
        "otlp_endpoint": "http://collector:4318/v1/traces",
        "service_name": "edge-idgate",
        "sample_ratio": 0.25,
        "headers": {"x-api-key": "${OTLP_KEY}"},
        "continue_incoming": "trusted_proxies",
        "include_user": True,
    }

    tracing = parse_settings(document, {"OTLP_KEY": "k-123"}).tracing

    assert tracing is not None
    assert tracing.otlp_endpoint == "http://collector:4318/v1/traces"
    assert (tracing.service_name, tracing.sample_ratio) == ("edge-idgate", 0.25)
    assert [(name, value.reveal()) for name, value in tracing.headers] == [("x-api-key", "k-123")]
    assert "k-123" not in repr(tracing)
    assert tracing.continue_incoming is TraceContinuation.TRUSTED_PROXIES
    assert tracing.include_user is True


def test_tracing_defaults(document: dict[str, Any]) -> None:
    """Only the endpoint is required: new traces all sampled, any traceparent continued, no user."""
    document["tracing"] = {"otlp_endpoint": "https://otlp.example.com/v1/traces"}

    tracing = parse_settings(document, {}).tracing

    assert tracing is not None
    assert (tracing.service_name, tracing.sample_ratio) == ("idgate", 1.0)
    assert tracing.continue_incoming is TraceContinuation.ANY
    assert (tracing.headers, tracing.include_user) == ((), False)


@pytest.mark.parametrize(
    ("tracing", "problem"),
    [
        ({}, "tracing.otlp_endpoint: required"),
        ({"otlp_endpoint": "collector:4318"}, "tracing.otlp_endpoint: expected an absolute"),
        ({"otlp_endpoint": "http://c/v1/traces", "sample_ratio": 1.5}, "tracing.sample_ratio"),
        ({"otlp_endpoint": "http://c/v1/traces", "sample_ratio": "all"}, "tracing.sample_ratio"),
        (
            {"otlp_endpoint": "http://c/v1/traces", "continue_incoming": "some"},
            "tracing.continue_incoming: must be one of: any, trusted_proxies, none",
        ),
        (
            {"otlp_endpoint": "http://c/v1/traces", "headers": {"a b": "x"}},
            'tracing.headers["a b"]',
        ),
        ({"otlp_endpoint": "http://c/v1/traces", "exporter": "zipkin"}, "tracing.exporter"),
    ],
)
def test_bad_tracing_values_name_their_key(
    document: dict[str, Any], issues: Issues, tracing: dict[str, Any], problem: str
) -> None:
    """Each mistake is reported at its key path."""
    document["tracing"] = tracing

    assert any(issue.startswith(problem) for issue in issues(document)), issues(document)


def test_tracing_without_the_extra_installed_is_an_error(
    document: dict[str, Any], issues: Issues, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configured tracing without OpenTelemetry installed says which extra to install."""
    monkeypatch.setitem(sys.modules, TRACING_MODULES[0], None)
    document["tracing"] = {"otlp_endpoint": "http://collector:4318/v1/traces"}

    assert issues(document) == [
        (
            "tracing: set, but OpenTelemetry is not installed: install idgate with its tracing"
            " extra (pip install 'idgate[tracing]'), or remove this section"
        )
    ]
