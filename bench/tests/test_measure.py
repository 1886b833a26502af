import pytest

from bench.measure import Measurement, Snapshot, aggregate
from bench.plan import BASELINE, DISTINCT, Target, Workload
from bench.procfs import Usage
from bench.wrk import WrkResult


def result(requests: int, *, p99: float = 10.0, errors: int = 0) -> WrkResult:
    return WrkResult(
        requests=requests,
        seconds=10.0,
        p50_ms=1.0,
        p99_ms=p99,
        socket_errors=errors,
        bad_status=0,
        tokens_sent=0,
        tokens_max_thread=0,
    )


def snap(
    *, server: float, system: float, upstream: float, wrk: float, busy: float, clock: float
) -> Snapshot:
    return Snapshot(
        server=Usage(cpu_seconds=server, system_seconds=system, rss_bytes={1: 50, 2: 70}),
        upstream_cpu=upstream,
        wrk_cpu=wrk,
        machine_busy=busy,
        clock=clock,
    )


def test_cpu_per_request_and_competing_load_come_from_the_snapshots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Server CPU is divided by requests; what nobody of ours used is the others' share."""
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1})
    before = snap(server=1.0, system=0.2, upstream=5.0, wrk=0.0, busy=100.0, clock=0.0)
    after = snap(server=4.0, system=0.8, upstream=6.0, wrk=2.0, busy=110.0, clock=10.0)
    measured = Measurement.of(BASELINE, Target.IDGATE, result(10_000), before=before, after=after)
    assert measured.cpu_us_per_request == 300.0
    assert round(measured.system_us_per_request, 6) == 60.0
    # 10 s busy of 20 core-seconds; ours: 3 server + 1 upstream + 2 wrk; 4 left for others.
    assert measured.others_share == 0.2
    assert (measured.rss_max, measured.rss_total) == (70, 120)


def measurement(
    target: Target,
    requests: int,
    *,
    workload: Workload = BASELINE,
    errors: int = 0,
    repeated: int = 0,
) -> Measurement:
    return Measurement(
        workload=workload,
        target=target,
        wrk=result(requests, errors=errors),
        cpu_us_per_request=requests / 100,
        system_us_per_request=0.0,
        rss_max=requests,
        rss_total=requests * 2,
        others_share=0.0,
        repeated=repeated,
    )


def test_rounds_become_medians_with_errors_summed_and_memory_maximal() -> None:
    """Rates and CPU take the median round; errors add up; RSS keeps the largest seen."""
    runs = [
        measurement(Target.IDGATE, 30_000, errors=1),
        measurement(Target.APACHE, 60_000),
        measurement(Target.IDGATE, 10_000),
        measurement(Target.IDGATE, 20_000, errors=2),
    ]
    rows = aggregate(runs)
    assert [row.target for row in rows] == [Target.IDGATE, Target.APACHE]
    idgate = rows[0]
    assert (idgate.rounds, idgate.rps, idgate.cpu_us_per_request) == (3, 2_000, 200)
    assert idgate.errors == 3
    assert idgate.rss_max == 30_000


def test_reused_tokens_are_a_share_of_all_rounds_requests() -> None:
    """Requests that reused a distinct token are reported as a share of every round's requests."""
    runs = [
        measurement(Target.IDGATE, 10_000, workload=DISTINCT, repeated=1_000),
        measurement(Target.IDGATE, 10_000, workload=DISTINCT),
    ]
    (row,) = aggregate(runs)
    assert row.repeated_share == 0.05
