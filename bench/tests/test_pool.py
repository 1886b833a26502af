from pathlib import Path

from bench.pool import TokenPool
from bench.tokens import Issuer
from bench.wrk import WrkResult

ISSUER = Issuer(issuer="http://127.0.0.1:1", audience="https://api.bench.test")


def sent(per_thread: list[int]) -> WrkResult:
    return WrkResult(
        requests=sum(per_thread),
        seconds=1.0,
        p50_ms=1.0,
        p99_ms=2.0,
        socket_errors=0,
        bad_status=0,
        tokens_sent=sum(per_thread),
        tokens_max_thread=max(per_thread),
    )


def test_runs_start_past_every_token_already_sent(tmp_path: Path) -> None:
    """The next run begins after the furthest any thread got, in every thread's share."""
    pool = TokenPool(ISSUER, tmp_path / "pool.txt", threads=2, processes=1)
    assert pool.top_up(7) == 8  # whole rows of two, one line per thread
    first = pool.fresh()
    assert (first.start, first.capacity) == (0, 4)
    pool.consumed(first, sent([3, 2]))
    second = pool.fresh()
    assert second.start == 3
    assert second.reused(sent([1, 1]), threads=2) == 0


def test_top_up_mints_only_what_is_missing_and_appends(tmp_path: Path) -> None:
    """Unsent tokens count toward a top-up; new ones are appended, distinct from the old."""
    path = tmp_path / "pool.txt"
    pool = TokenPool(ISSUER, path, threads=2, processes=1)
    pool.top_up(4)
    pool.consumed(pool.fresh(), sent([1, 1]))
    assert pool.top_up(2) == 0
    assert pool.top_up(6) == 4
    lines = path.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 8


def test_a_run_past_its_share_counts_reused_requests(tmp_path: Path) -> None:
    """A thread that went round its share sent tokens twice; for idgate those are counted."""
    pool = TokenPool(ISSUER, tmp_path / "pool.txt", threads=2, processes=1)
    pool.top_up(4)
    assert pool.fresh().reused(sent([5, 4]), threads=2) == 6
    assert pool.from_start().reused(sent([5, 4]), threads=2) == 0
