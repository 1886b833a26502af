"""The soak: its report section lives inside BENCHMARKS.md, and a short soak runs clean."""

from __future__ import annotations

from pathlib import Path

from bench.soak import kept_section, soak, with_section
from bench.soak_load import EXPECTED
from bench.soak_sample import Sample, drifts

BENCHMARKS = "# Benchmarks\n\n## Results\n\nnumbers\n\n## What is measured\n\ntext\n"


def test_a_soak_section_is_appended_then_replaced_in_place() -> None:
    """The first soak adds its section; the next replaces it and leaves the rest alone."""
    once = with_section(BENCHMARKS, "## Soak\n\nfirst\n")
    twice = with_section(once, "## Soak\n\nsecond\n")
    assert once.endswith("## Soak\n\nfirst\n")
    assert twice == BENCHMARKS.rstrip("\n") + "\n\n## Soak\n\nsecond\n"
    middle = with_section(
        once.replace("first\n", "first\n\n## After\n\nkept\n"), "## Soak\n\nnew\n"
    )
    assert "## After\n\nkept" in middle
    assert "first" not in middle


def test_a_benchmark_run_keeps_the_last_soak() -> None:
    """Re-rendering BENCHMARKS.md after a benchmark carries the soak section over."""
    document = with_section(BENCHMARKS, "## Soak\n\nresult\n")
    section = kept_section(document)
    assert section == "## Soak\n\nresult\n"
    assert kept_section(BENCHMARKS) is None


def test_drift_compares_the_first_and_last_windows_after_warm_up() -> None:
    """Warm-up samples are left out; medians of the first and last windows are compared."""
    mib = 1024 * 1024
    samples = [
        Sample(at=float(at), rss_bytes={7: (50 + at) * mib}, open_fds={7: 10 + at % 3})
        for at in range(20)
    ]
    (drift,) = drifts(samples, warmup=5.0, window=3.0, roles={7: "worker"})
    assert drift.role == "worker"
    assert drift.rss_first_mb == 56.0
    assert drift.rss_last_mb == 68.0
    assert (drift.fds_min, drift.fds_max) == (10, 12)


def test_a_short_soak_sees_every_scenario_and_nothing_unexpected(tmp_path: Path) -> None:
    """A few seconds of the mixed workload against a real `idgate serve`: every scenario ran,
    each answered only what it may, and nothing was forwarded without a decision."""
    result = soak(tmp_path, seconds=6.0, concurrency=6)

    assert {name for name, _ in result.tally} == set(EXPECTED)
    assert result.passed, result.tally
    assert result.drifts
