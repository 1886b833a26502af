"""One measured wrk run (throughput, latency, the server's CPU and memory), and the medians of
several rounds."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bench import procfs
from bench.plan import Target, Workload
from bench.wrk import WrkResult


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What is read just before and just after a run."""

    server: procfs.Usage
    upstream_cpu: float
    """CPU seconds of the upstream nginx (0 when it is the server under test)."""
    wrk_cpu: float
    """CPU seconds of this harness's finished children: wrk, once it has exited."""
    machine_busy: float
    clock: float


def snapshot(server: int, upstream: int | None, companion: int | None = None) -> Snapshot:
    """`companion`: another process tree counted as part of the server (idgate behind nginx)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = procfs.usage(server)
    if companion is not None:
        usage = procfs.combined(usage, procfs.usage(companion))
    return Snapshot(
        server=usage,
        upstream_cpu=procfs.usage(upstream).cpu_seconds if upstream is not None else 0.0,
        wrk_cpu=children.ru_utime + children.ru_stime,
        machine_busy=procfs.machine_busy_seconds(),
        clock=time.monotonic(),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    workload: Workload
    target: Target
    wrk: WrkResult
    cpu_us_per_request: float
    """The server's whole process tree, user + system, divided by the requests wrk completed."""
    system_us_per_request: float
    """The system (kernel) part of it."""
    rss_max: int
    """Resident memory of the server's largest process (a worker) after the run."""
    rss_total: int
    others_share: float
    """Share of the machine's CPU that neither the server, the upstream nor wrk used: other
    programs competing with the run (0 on a quiet machine)."""
    repeated: int
    """Requests that carried a distinct-workload token already sent to this server."""

    @classmethod
    def of(
        cls,
        workload: Workload,
        target: Target,
        result: WrkResult,
        *,
        before: Snapshot,
        after: Snapshot,
        repeated: int = 0,
    ) -> Measurement:
        server = after.server.cpu_seconds - before.server.cpu_seconds
        system = after.server.system_seconds - before.server.system_seconds
        requests = max(result.requests, 1)
        ours = server + after.upstream_cpu - before.upstream_cpu + after.wrk_cpu - before.wrk_cpu
        others = after.machine_busy - before.machine_busy - ours
        capacity = (after.clock - before.clock) * len(os.sched_getaffinity(0))
        return cls(
            workload=workload,
            target=target,
            wrk=result,
            cpu_us_per_request=server / requests * 1e6,
            system_us_per_request=system / requests * 1e6,
            rss_max=max(after.server.rss_bytes.values(), default=0),
            rss_total=sum(after.server.rss_bytes.values()),
            others_share=max(0.0, others / capacity),
            repeated=repeated,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """Medians over the rounds of one workload against one server."""

    workload: Workload
    target: Target
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Socket errors, timeouts and non-2xx/3xx answers, summed over every round."""
    cpu_us_per_request: float
    rss_max: int
    """Largest process RSS seen in any round."""
    rss_total: int
    others_share: float
    repeated_share: float
    """Share of all requests that reused a distinct-workload token."""


def _median(values: Sequence[Measurement], field: Callable[[Measurement], float]) -> float:
    return statistics.median(field(value) for value in values)


def aggregate(measurements: Iterable[Measurement]) -> list[Row]:
    """One row per (workload, target), in the order first measured."""
    groups: dict[tuple[str, Target], list[Measurement]] = {}
    for measurement in measurements:
        groups.setdefault((measurement.workload.name, measurement.target), []).append(measurement)
    rows = []
    for runs in groups.values():
        requests = sum(run.wrk.requests for run in runs)
        rows.append(
            Row(
                workload=runs[0].workload,
                target=runs[0].target,
                rounds=len(runs),
                rps=_median(runs, lambda run: run.wrk.rps),
                p50_ms=_median(runs, lambda run: run.wrk.p50_ms),
                p99_ms=_median(runs, lambda run: run.wrk.p99_ms),
                errors=sum(run.wrk.errors for run in runs),
                cpu_us_per_request=_median(runs, lambda run: run.cpu_us_per_request),
                rss_max=max(run.rss_max for run in runs),
                rss_total=max(run.rss_total for run in runs),
                others_share=_median(runs, lambda run: run.others_share),
                repeated_share=sum(run.repeated for run in runs) / max(requests, 1),
            )
        )
    return rows
