from collections.abc import Sequence

from bench.measure import Row
from bench.plan import BASELINE, DISTINCT, HIGH_CONCURRENCY, Target, Workload
from bench.targets import MB, Verdict, judge
from bench.transfer import Transfer


def row(
    workload: Workload,
    target: Target,
    rps: float,
    *,
    p99: float = 10.0,
    cpu: float = 100.0,
    errors: int = 0,
    rss: int = 60 * MB,
) -> Row:
    return Row(
        workload=workload,
        target=target,
        rounds=3,
        rps=rps,
        p50_ms=1.0,
        p99_ms=p99,
        errors=errors,
        cpu_us_per_request=cpu,
        rss_max=rss,
        rss_total=rss * 3,
        others_share=0.0,
        repeated_share=0.0,
    )


def transfer(growth: int) -> Transfer:
    return Transfer(
        direction="upload",
        size_bytes=100 * MB,
        seconds=1.0,
        status=201,
        complete=True,
        rss_before=60 * MB,
        rss_peak=60 * MB + growth,
    )


def verdicts(rows: list[Row], transfers: Sequence[Transfer] = ()) -> dict[str, Verdict]:
    return {verdict.target: verdict for verdict in judge(rows, list(transfers))}


def test_every_target_passes_when_met() -> None:
    """Numbers that meet each target give a pass with no gap."""
    rows = [
        row(BASELINE, Target.APACHE, 6_000, p99=20.0),
        row(BASELINE, Target.IDGATE, 9_500, p99=15.0, cpu=120.0),
        row(BASELINE, Target.IDGATE_1K, 9_000),
        row(HIGH_CONCURRENCY, Target.IDGATE, 9_000, p99=80.0),
        row(DISTINCT, Target.APACHE, 6_000),
        row(DISTINCT, Target.IDGATE, 6_500),
    ]
    judged = verdicts(rows, [transfer(2 * MB)])
    assert len(judged) == 9
    assert all(verdict.passed and not verdict.gap for verdict in judged.values())


def test_misses_say_by_how_much() -> None:
    """A missed target names its gap: the factor still needed, or how far over the limit."""
    rows = [
        row(BASELINE, Target.APACHE, 6_000, p99=20.0),
        row(BASELINE, Target.IDGATE, 3_000, p99=40.0, cpu=300.0),
        row(BASELINE, Target.IDGATE_1K, 2_400, rss=120 * MB),
        row(HIGH_CONCURRENCY, Target.IDGATE, 2_000, p99=250.0, errors=5),
    ]
    judged = verdicts(rows, [transfer(30 * MB)])
    ratio = judged["idgate ≥ 1.5x Apache req/s (same token, -c32)"]
    assert not ratio.passed
    assert ratio.gap == "needs 3.0x its req/s"
    assert judged["CPU per request ≤ 150 µs (same token, -c32)"].gap == "2.0x the limit"
    assert judged["-c256: no errors"].gap == "5 errors"
    assert judged["1,000 routes within 10% of 10 routes (req/s)"].gap == "20% slower"
    assert judged["RSS per worker < 100 MB"].gap == "20 MB over"
    assert not judged["RSS flat through 100 MB transfers (growth < 10 MB)"].passed


def test_targets_without_their_numbers_are_left_out() -> None:
    """A run that measured no Apache judges nothing against it."""
    judged = verdicts([row(BASELINE, Target.IDGATE, 3_000)])
    assert "idgate ≥ 1.5x Apache req/s (same token, -c32)" not in judged
    assert "CPU per request ≤ 150 µs (same token, -c32)" in judged
