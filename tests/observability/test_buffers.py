"""Buffered request-path metrics: exact totals, visible to every collect, flushed to the files the
supervisor sums in multiprocess mode."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector

from proxy.observability.metrics import Metrics

#: Below, on and above bucket bounds, zero, and past the last bound (the +Inf bucket).
AMOUNTS = (0.0, 0.0004, 0.0005, 0.0006, 0.001, 0.02, 0.25, 1.0, 29.9, 30.0, 31.0, 500.0)


def _samples(registry: CollectorRegistry, route: str) -> dict[tuple[str, str], float]:
    """The request_duration samples of one route, by sample name and `le`."""
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in registry.collect()
        if family.name == "idgate_request_duration_seconds"
        for sample in family.samples
        if sample.labels["route"] == route and not sample.name.endswith("_created")
    }


def test_buffered_histogram_equals_observing_one_by_one() -> None:
    """Every bucket, the count and the sum are what prometheus-client's own observe gives, across
    several flushes."""
    metrics = Metrics(registry := CollectorRegistry())
    buffered = metrics.child(metrics.request_duration, "buffered")
    direct = metrics.request_duration.labels("direct")

    for round_ in range(3):
        for amount in AMOUNTS[round_:]:
            buffered.observe(amount)
            direct.observe(amount)
        metrics.buffers.flush()

    got, expected = _samples(registry, "buffered"), _samples(registry, "direct")
    sum_key = ("idgate_request_duration_seconds_sum", "")
    assert got.pop(sum_key) == pytest.approx(expected.pop(sum_key))
    assert got == expected


def test_a_collect_sees_every_update_at_once() -> None:
    """A scrape of the process itself (and a test reading its registry) never lags: the registry
    flushes before it reads."""
    metrics = Metrics(registry := CollectorRegistry())

    metrics.child(metrics.requests, "r", "GET", "2xx").inc()
    metrics.child(metrics.requests, "r", "GET", "2xx").inc()
    metrics.token_validation_duration.observe(0.002)

    labels = {"route": "r", "method": "GET", "status_class": "2xx"}
    assert registry.get_sample_value("idgate_requests_total", labels) == 2
    assert registry.get_sample_value("idgate_token_validation_duration_seconds_count") == 1


def test_flushes_from_another_thread_lose_no_update() -> None:
    """A scrape flushes from its own thread while the event loop counts: every count arrives."""
    metrics = Metrics(registry := CollectorRegistry())
    counter = metrics.child(metrics.decisions, "r", "allow", "group")
    histogram = metrics.child(metrics.upstream_duration, "r")
    done = threading.Event()

    def scrape_repeatedly() -> None:
        while not done.is_set():
            metrics.buffers.flush()

    scraper = threading.Thread(target=scrape_repeatedly)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to interleave the two
    scraper.start()
    try:
        for _ in range(100_000):
            counter.inc()
            histogram.observe(0.003)
    finally:
        done.set()
        scraper.join()
        sys.setswitchinterval(switch_interval)

    labels = {"route": "r", "decision": "allow", "reason": "group"}
    assert registry.get_sample_value("idgate_auth_decisions_total", labels) == 100_000
    count = registry.get_sample_value("idgate_upstream_duration_seconds_count", {"route": "r"})
    assert count == 100_000


def test_worker_files_hold_the_counts_once_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In multiprocess mode the supervisor reads the workers' files: a flush puts every update
    there (the worker flushes every second and when it stops)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pid = os.getpid()
    multiprocess_value = values.MultiProcessValue(process_identifier=lambda: pid)  # type: ignore[no-untyped-call]
    monkeypatch.setattr(values, "ValueClass", multiprocess_value)
    metrics = Metrics(CollectorRegistry())
    supervisor = CollectorRegistry()
    MultiProcessCollector(supervisor, path=str(tmp_path))  # type: ignore[no-untyped-call]
    labels = {"route": "r", "method": "GET", "status_class": "2xx"}

    for _ in range(3):
        metrics.child(metrics.requests, "r", "GET", "2xx").inc()
        metrics.child(metrics.request_duration, "r").observe(0.004)
    unflushed = supervisor.get_sample_value("idgate_requests_total", labels)
    metrics.buffers.flush()

    assert unflushed in (None, 0.0)
    assert supervisor.get_sample_value("idgate_requests_total", labels) == 3
    duration = supervisor.get_sample_value(
        "idgate_request_duration_seconds_bucket", {"route": "r", "le": "0.005"}
    )
    assert duration == 3
