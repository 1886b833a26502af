from collections.abc import Sequence

from bench.measure import Row
from bench.plan import BASELINE, DISTINCT, HIGH_CONCURRENCY, USERS, Target, Workload
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


CACHED = Target.NGINX_IDGATE_CACHED.value
CACHED_C32 = f"{CACHED} ≥ 3x Apache req/s, p99 below Apache's, no errors (same token, -c32)"
CACHED_C256 = CACHED_C32.replace("-c32", "-c256")
GATEWAY = "nginx+idgate ≥ 1.3x Apache req/s (same token, -c32)"
IDGATE = "idgate ≥ 1.2x Apache req/s (same token, -c32)"
NEVER_SEEN = "idgate ≥ 0.8x Apache req/s (never-seen tokens)"
USERS_TARGET = "idgate ≥ 1x Apache req/s (10,000 users' tokens)"


def issue_rows(factor: float, *, p99: float = 5.0, errors: int = 0) -> list[Row]:
    """Apache at 10,000 req/s everywhere, the others at `factor` times their target's ratio."""
    rows = []
    for workload in (BASELINE, HIGH_CONCURRENCY):
        rows.append(row(workload, Target.APACHE, 10_000, p99=20.0))
        rows.append(
            row(workload, Target.NGINX_IDGATE_CACHED, 30_000 * factor, p99=p99, errors=errors)
        )
    rows += [
        row(BASELINE, Target.NGINX_IDGATE, 13_000 * factor),
        row(BASELINE, Target.IDGATE, 12_000 * factor),
        row(BASELINE, Target.IDGATE_1K, 12_000 * factor),
        row(DISTINCT, Target.APACHE, 10_000),
        row(DISTINCT, Target.IDGATE, 8_000 * factor),
        row(USERS, Target.APACHE, 10_000),
        row(USERS, Target.IDGATE, 10_000 * factor),
    ]
    return rows


def test_every_issue_target_passes_when_met() -> None:
    """Each of issue 16's ratios met exactly (and memory in bounds) gives a pass with no gap."""
    judged = verdicts(issue_rows(1.0), [transfer(2 * MB)])
    assert list(judged) == [
        CACHED_C32,
        CACHED_C256,
        GATEWAY,
        IDGATE,
        NEVER_SEEN,
        USERS_TARGET,
        "1,000 routes within 10% of 10 routes (req/s)",
        "RSS per worker < 100 MB",
        "RSS flat through 100 MB transfers (growth < 10 MB)",
    ]
    assert all(verdict.passed and not verdict.gap for verdict in judged.values())


def test_ratio_misses_say_the_factor_still_needed() -> None:
    """Every server at half its target's ratio misses it by a factor of 2."""
    judged = verdicts(issue_rows(0.5))
    for name in (GATEWAY, IDGATE, NEVER_SEEN, USERS_TARGET):
        assert not judged[name].passed
        assert judged[name].gap == "needs 2.00x its req/s"
    assert judged[USERS_TARGET].measured == "0.50x (5,000 vs 10,000 req/s)"
    assert judged[CACHED_C32].gap == "needs 2.00x its req/s"


def test_a_near_miss_reads_as_one() -> None:
    """2.98x where 3x is needed is a miss by 1%, not a gap that reads "needs 1.0x"."""
    judged = verdicts(issue_rows(2.98 / 3))
    assert judged[CACHED_C32].gap == "needs 1.01x its req/s"


def test_cached_gateway_also_needs_a_lower_p99_and_no_errors() -> None:
    """Enough req/s is not enough for the cached gateway: a p99 at or above Apache's or any
    error misses the target, and the gap names each shortfall."""
    judged = verdicts(issue_rows(1.0, p99=40.0, errors=3))
    for name in (CACHED_C32, CACHED_C256):
        assert not judged[name].passed
        assert judged[name].gap == "p99 2.0x Apache's; 3 errors"
    assert "decision cache 5 s" in CACHED_C32


def test_older_targets_say_by_how_much() -> None:
    """1,000 routes and memory keep their gaps: how much slower, how far over."""
    rows = [
        row(BASELINE, Target.IDGATE, 3_000),
        row(BASELINE, Target.IDGATE_1K, 2_400, rss=120 * MB),
    ]
    judged = verdicts(rows, [transfer(30 * MB)])
    assert judged["1,000 routes within 10% of 10 routes (req/s)"].gap == "20% slower"
    assert judged["RSS per worker < 100 MB"].gap == "20 MB over"
    assert not judged["RSS flat through 100 MB transfers (growth < 10 MB)"].passed


def test_targets_without_their_numbers_are_left_out() -> None:
    """A run that measured no Apache judges nothing against it."""
    judged = verdicts([row(BASELINE, Target.IDGATE, 3_000)])
    assert IDGATE not in judged
    assert list(judged) == ["RSS per worker < 100 MB"]
