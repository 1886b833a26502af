"""Request-path metric updates counted in plain Python and added to prometheus-client in batches.

A prometheus-client update takes a lock, and in multiprocess mode writes an mmap too (a histogram
observation: a bucket search in Python and two writes); the request path makes six a request.
Here an update is an increment of a Python number, and `flush` adds what piled up since the last
flush to the prometheus-client values. Totals stay exact. A collect of the registry flushes
first, so a scrape of the process itself sees every request; under the supervisor a worker
flushes every `FLUSH_INTERVAL_SECONDS` and when it stops, so the supervisor's sum of the
workers' files lags by at most that interval.

Only the event loop thread updates a buffer, but a flush may run on another (a scrape runs
`generate_latest` in a thread), so a buffer never resets: it keeps running totals, and the
flusher alone remembers how much of them it has already passed on.
"""

from __future__ import annotations

import asyncio
import threading
from bisect import bisect_left
from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric

FLUSH_INTERVAL_SECONDS: Final = 1.0


class CounterBuffer:
    """One counter child's increments, passed on by `flush`."""

    __slots__ = ("_flushed", "_target", "_total")

    def __init__(self, target: Counter) -> None:
        self._target = target
        self._total = 0
        self._flushed = 0

    def inc(self) -> None:
        self._total += 1

    def flush(self) -> None:
        total = self._total
        if total != self._flushed:
            self._target.inc(total - self._flushed)
            self._flushed = total


class HistogramBuffer:
    """One histogram child's observations as bucket counts and a sum, passed on by `flush`.

    prometheus-client has no public call that adds several observations at once, so `flush`
    adds to the child's bucket and sum values itself (`_buckets`, `_sum`, `_upper_bounds`);
    tests/observability/test_buffers.py pins that the result equals observing one by one.
    """

    __slots__ = ("_bounds", "_counts", "_flushed_counts", "_flushed_sum", "_sum", "_target")

    def __init__(self, target: Histogram) -> None:
        self._target = target
        # Ends with +Inf, so every amount has a bucket.
        self._bounds = tuple(target._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._flushed_counts = [0] * len(self._bounds)
        self._flushed_sum = 0.0

    def observe(self, amount: float) -> None:
        # The first bucket whose upper bound is >= amount, as prometheus-client's observe picks.
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def flush(self) -> None:
        # An observation landing between these two reads is in the sum and not yet in a bucket
        # until the next flush: prometheus-client's own collect reads them as loosely.
        counts = self._counts.copy()
        total = self._sum
        for value, now, before in zip(
            self._target._buckets, counts, self._flushed_counts, strict=True
        ):
            if now != before:
                value.inc(now - before)
        if total != self._flushed_sum:
            self._target._sum.inc(total - self._flushed_sum)
        self._flushed_counts = counts
        self._flushed_sum = total


class MetricBuffers:
    """The buffers of one registry, flushed together. Registered on the registry before its
    metrics (a registry collects in registration order), so every collect flushes first."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._buffers: list[CounterBuffer | HistogramBuffer] = []
        self._flushing = threading.Lock()
        registry.register(self)

    def counter(self, target: Counter) -> CounterBuffer:
        buffer = CounterBuffer(target)
        self._buffers.append(buffer)
        return buffer

    def histogram(self, target: Histogram) -> HistogramBuffer:
        buffer = HistogramBuffer(target)
        self._buffers.append(buffer)
        return buffer

    def flush(self) -> None:
        with self._flushing:
            for buffer in tuple(self._buffers):
                buffer.flush()

    async def flush_periodically(self) -> None:
        """Flush every FLUSH_INTERVAL_SECONDS until cancelled; then the caller flushes once more."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_SECONDS)
            self.flush()

    def describe(self) -> Iterable[Metric]:
        """No samples of its own (so registering it claims no metric name)."""
        return ()

    def collect(self) -> Iterable[Metric]:
        self.flush()
        return ()
