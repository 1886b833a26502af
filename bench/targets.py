"""The issue's targets, judged on one run's numbers, each with what was measured and the gap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bench.measure import Row
from bench.plan import BASELINE, DISTINCT, HIGH_CONCURRENCY, Target, Workload
from bench.transfer import Transfer

MB: Final = 1024 * 1024
CPU_LIMIT_US: Final = 150.0
P99_LIMIT_MS: Final = 100.0
RSS_LIMIT: Final = 100 * MB
#: "Flat" through a 100 MB body: a worker grows by less than a tenth of it.
FLAT_LIMIT: Final = 10 * MB


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    target: str
    measured: str
    passed: bool
    gap: str
    """For a miss, by how much; empty for a pass."""


def find(rows: Sequence[Row], workload: Workload, target: Target) -> Row | None:
    for row in rows:
        if row.workload.name == workload.name and row.target is target:
            return row
    return None


def _ratio(
    name: str, rows: Sequence[Row], workload: Workload, other: Target, at_least: float
) -> Verdict | None:
    mine, theirs = find(rows, workload, Target.IDGATE), find(rows, workload, other)
    if mine is None or theirs is None:
        return None
    ratio = mine.rps / theirs.rps
    measured = f"{ratio:.2f}x ({mine.rps:,.0f} vs {theirs.rps:,.0f} req/s)"
    gap = "" if ratio >= at_least else f"needs {at_least * theirs.rps / mine.rps:.1f}x its req/s"
    return Verdict(target=name, measured=measured, passed=ratio >= at_least, gap=gap)


def _at_most(name: str, value: float, limit: float, unit: str) -> Verdict:
    passed = value <= limit
    gap = "" if passed else f"{value / limit:.1f}x the limit"
    return Verdict(target=name, measured=f"{value:,.0f} {unit}", passed=passed, gap=gap)


def judge(rows: Sequence[Row], transfers: Sequence[Transfer]) -> list[Verdict]:
    verdicts: list[Verdict | None] = [
        _ratio("idgate ≥ 1.5x Apache req/s (same token, -c32)", rows, BASELINE, Target.APACHE, 1.5),
    ]
    idgate, apache = find(rows, BASELINE, Target.IDGATE), find(rows, BASELINE, Target.APACHE)
    if idgate is not None and apache is not None:
        passed = idgate.p99_ms <= apache.p99_ms
        verdicts.append(
            Verdict(
                target="idgate p99 ≤ Apache p99 (same token, -c32)",
                measured=f"{idgate.p99_ms:.1f} vs {apache.p99_ms:.1f} ms",
                passed=passed,
                gap="" if passed else f"{idgate.p99_ms / apache.p99_ms:.1f}x Apache's p99",
            )
        )
    if idgate is not None:
        verdicts.append(
            _at_most(
                "CPU per request ≤ 150 µs (same token, -c32)",
                idgate.cpu_us_per_request,
                CPU_LIMIT_US,
                "µs",
            )
        )
    crowded = find(rows, HIGH_CONCURRENCY, Target.IDGATE)
    if crowded is not None:
        verdicts.append(
            Verdict(
                target="-c256: no errors",
                measured=f"{crowded.errors:,} errors",
                passed=crowded.errors == 0,
                gap="" if crowded.errors == 0 else f"{crowded.errors:,} errors",
            )
        )
        verdicts.append(_at_most("-c256: p99 < 100 ms", crowded.p99_ms, P99_LIMIT_MS, "ms"))
    verdicts.append(
        _ratio("distinct tokens ≥ 1.0x Apache req/s", rows, DISTINCT, Target.APACHE, 1.0)
    )
    verdicts.append(_routes(rows))
    verdicts.extend(_memory(rows, transfers))
    return [verdict for verdict in verdicts if verdict is not None]


def _routes(rows: Sequence[Row]) -> Verdict | None:
    few, many = find(rows, BASELINE, Target.IDGATE), find(rows, BASELINE, Target.IDGATE_1K)
    if few is None or many is None:
        return None
    change = many.rps / few.rps - 1
    passed = change >= -0.10
    return Verdict(
        target="1,000 routes within 10% of 10 routes (req/s)",
        measured=f"{change:+.1%} ({many.rps:,.0f} vs {few.rps:,.0f} req/s)",
        passed=passed,
        gap="" if passed else f"{-change:.0%} slower",
    )


def _memory(rows: Sequence[Row], transfers: Sequence[Transfer]) -> list[Verdict]:
    idgate_rows = [row for row in rows if row.target in (Target.IDGATE, Target.IDGATE_1K)]
    peak = max([row.rss_max for row in idgate_rows] + [t.rss_peak for t in transfers], default=0)
    verdicts = []
    if peak:
        passed = peak < RSS_LIMIT
        verdicts.append(
            Verdict(
                target="RSS per worker < 100 MB",
                measured=f"{peak / MB:.0f} MB at most",
                passed=passed,
                gap="" if passed else f"{(peak - RSS_LIMIT) / MB:.0f} MB over",
            )
        )
    if transfers:
        grown = max(transfer.growth for transfer in transfers)
        whole = all(transfer.complete for transfer in transfers)
        passed = whole and grown < FLAT_LIMIT
        size = max(transfer.size_bytes for transfer in transfers) // MB
        measured = ", ".join(f"{t.direction} {t.growth / MB:+.1f} MB" for t in transfers)
        verdicts.append(
            Verdict(
                target=f"RSS flat through {size} MB transfers (growth < 10 MB)",
                measured=measured + ("" if whole else " (a transfer was incomplete)"),
                passed=passed,
                gap="" if passed else f"grew {grown / MB:.0f} MB",
            )
        )
    return verdicts
