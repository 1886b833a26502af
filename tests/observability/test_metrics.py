"""The exposition idgate's registry writes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from proxy.observability.metrics import Metrics


def test_counters_and_histograms_have_no_created_series() -> None:
    """A scrape carries each counter and histogram once, without a `_created` twin per child."""
    metrics = Metrics(CollectorRegistry())
    metrics.child(metrics.requests, "app", "GET", "2xx").inc()
    metrics.child(metrics.request_duration, "app").observe(0.01)
    metrics.logins.labels(result="success").inc()

    exposition = generate_latest(metrics.registry).decode()

    assert "idgate_requests_total{" in exposition
    assert "idgate_logins_total{" in exposition
    assert "_created" not in exposition
