"""The alert rules load in Prometheus, pass their unit tests, and read metrics idgate exports."""

from __future__ import annotations

import re
from typing import Any, Final

import pytest
from prometheus_client import CollectorRegistry

from proxy.observability.metrics import ROUTE_IDGATE, ROUTE_NONE, Metrics, status_class
from proxy.policy.decision import Outcome
from proxy.reasons import Reason
from tests.deploy.files import ALERT_RULES, ALERT_TESTS, PROMETHEUS, read_yaml
from tests.deploy.tools import run, tool

PROMTOOL_INSTALL: Final = "apt-get install prometheus (it ships promtool)"
_METRIC_NAME: Final = re.compile(r"\bidgate_[a-z0-9_]+")
#: `label="value"`, `label=~"a|b"` and their negations; regex values are plain alternatives here.
_MATCHER: Final = re.compile(r'\b(?P<label>[a-z_]+)\s*(?:=~|!~|!=|=)\s*"(?P<value>[^"]*)"')
#: Label values a rule may match on, from the enums and constants the code labels with.
_KNOWN_VALUES: Final = {
    "decision": {outcome.value for outcome in Outcome},
    "reason": {reason.value for reason in Reason},
    "route": {ROUTE_IDGATE, ROUTE_NONE},
    "status_class": {status_class(status) for status in range(100, 600, 100)},
}


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in read_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]


def _exported_names() -> set[str]:
    """Every sample name /metrics can carry, from the metric declarations themselves."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    registry = CollectorRegistry()
    Metrics(registry)
    return {
        family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]
    }


@pytest.mark.e2e
def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` finds every rule file valid."""
    output = run([tool("promtool", PROMTOOL_INSTALL), "check", "rules", str(ALERT_RULES)])

    assert f"SUCCESS: {len(_alerts())} rules found" in output


@pytest.mark.e2e
def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules` passes every alert's unit test."""
    output = run(
        [tool("promtool", PROMTOOL_INSTALL), "test", "rules", ALERT_TESTS.name], cwd=PROMETHEUS
    )

    assert "SUCCESS" in output


def test_every_alert_is_tested_firing_and_silent() -> None:
    """Each alert has a unit test where it fires and one where it stays silent."""
    tests = read_yaml(ALERT_TESTS)
    firing: set[str] = set()
    silent: set[str] = set()
    for group in tests["tests"]:
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    names = {alert["alert"] for alert in _alerts()}

    assert tests["rule_files"] == [ALERT_RULES.name]
    assert names - firing == set()
    assert names - silent == set()


def test_alerts_cover_every_failure_operators_must_hear_of() -> None:
    """Alerts exist for denial spikes, authorization errors, stale keys, upstream 5xx, p95
    latency, failing refreshes, failed reloads, forwards without a decision, and certificates
    that expire within a day or have expired."""
    assert {alert["alert"] for alert in _alerts()} == {
        "IdgateDenialSpike",
        "IdgateAuthorizationErrors",
        "IdgateJWKSStale",
        "IdgateUpstream5xxRatioHigh",
        "IdgateLatencyP95High",
        "IdgateSessionRefreshFailing",
        "IdgateConfigReloadFailed",
        "IdgateForwardedWithoutDecision",
        "IdgateCertificateExpiringSoon",
        "IdgateCertificateExpired",
    }


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_alert_uses_only_metrics_idgate_exports(alert: dict[str, Any]) -> None:
    """Every metric an alert reads is declared in proxy/observability/metrics.py."""
    used = set(_METRIC_NAME.findall(alert["expr"]))

    assert used
    assert used - _exported_names() == set()


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_alert_matches_only_label_values_idgate_emits(alert: dict[str, Any]) -> None:
    """A matcher on decision, reason, route or status_class names values the code emits, so
    no typo leaves an alert that can never fire."""
    for match in _MATCHER.finditer(alert["expr"]):
        known = _KNOWN_VALUES.get(match["label"])
        if known is not None:
            assert set(match["value"].split("|")) <= known, match.group(0)


@pytest.mark.parametrize("alert", _alerts(), ids=lambda alert: alert["alert"])
def test_alert_carries_severity_summary_and_description(alert: dict[str, Any]) -> None:
    """Each alert has a severity for routing and a summary and description for the person paged."""
    assert alert["labels"]["severity"] in {"critical", "warning"}
    assert alert["annotations"]["summary"]
    assert alert["annotations"]["description"]
