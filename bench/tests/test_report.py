from bench.environment import Environment
from bench.measure import Row
from bench.plan import BASELINE, QUICK, Target
from bench.report import render
from bench.targets import MB, judge


def row(target: Target, rps: float) -> Row:
    return Row(
        workload=BASELINE,
        target=target,
        rounds=1,
        rps=rps,
        p50_ms=1.0,
        p99_ms=10.0,
        errors=0,
        cpu_us_per_request=100.0,
        rss_max=60 * MB,
        rss_total=180 * MB,
        others_share=0.03,
        repeated_share=0.0,
    )


ENVIRONMENT = Environment(
    date="2026-01-01 00:00 UTC",
    cores=2,
    cpu="Test CPU",
    memory_gb=4.0,
    kernel="6.1",
    load="0.10 0.20 0.30",
    versions=(("idgate", "0.1.0"), ("wrk", "4.1.0")),
)


def rendered(rows: list[Row]) -> str:
    return render(
        environment=ENVIRONMENT,
        options=QUICK,
        body_bytes=78,
        tokens_minted=5_000,
        rows=rows,
        verdicts=judge(rows, []),
        transfers=[],
    )


def test_report_holds_machine_versions_targets_and_ratios() -> None:
    """The Markdown names the machine and versions and gives each row its ratios."""
    text = rendered(
        [row(Target.NGINX, 40_000), row(Target.APACHE, 8_000), row(Target.IDGATE, 12_000)]
    )
    assert "2 cores (Test CPU)" in text
    assert "idgate 0.1.0 · wrk 4.1.0" in text
    assert "| same bearer token -c32 | idgate | 12,000 | 1.00 | 10.0 | 0 | 100 | 60 / 180 " in text
    assert "| 1.50 | 0.30 | 3% |" in text
    target = "| idgate ≥ 1.2x Apache req/s (same token, -c32) | 1.50x (12,000 vs 8,000 req/s) |"
    assert f"{target} pass |" in text


def test_every_number_taken_with_the_decision_cache_names_its_ceiling() -> None:
    """The cached gateway's rows and targets carry the 5 s ceiling beside their numbers."""
    text = rendered([row(Target.APACHE, 8_000), row(Target.NGINX_IDGATE_CACHED, 30_000)])
    numbers = [line for line in text.splitlines() if "30,000" in line]
    assert len(numbers) == 2
    assert all("decision cache 5 s" in line for line in numbers)
