"""The revocation list: written to the shared log and applied at once, others' entries followed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from proxy.sessions.revocation_list import RevocationList
from proxy.sessions.revocation_log import RevocationFileLog
from proxy.sessions.revocations import RevocationKind
from tests.sessions.records import record


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Poll `condition` until it holds; fail if it does not within `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (a file is followed by polling: nothing signals)
            await asyncio.sleep(0.05)


async def test_a_revocation_in_one_worker_reaches_another_through_the_file(tmp_path: Path) -> None:
    """Two workers' lists on one file: what one revokes or lifts the other follows within a poll."""
    path = tmp_path / "revocations.log"
    one, other = RevocationList(RevocationFileLog(path)), RevocationList(RevocationFileLog(path))
    await one.start()
    await other.start()
    try:
        alice = record(created_at=time.time() - 1)
        await one.revoke(RevocationKind.USER, "alice")
        assert one.covers(alice)  # at once where it was written
        started = time.monotonic()
        await eventually(lambda: other.covers(alice))
        assert time.monotonic() - started < 2
        assert await other.lift(RevocationKind.USER, "alice")
        await eventually(lambda: not one.covers(alice))
    finally:
        await one.close()
        await other.close()


async def test_a_restarted_worker_reads_the_revocations_already_written(tmp_path: Path) -> None:
    """A worker that starts after a revocation refuses from its first request."""
    path = tmp_path / "revocations.log"
    first = RevocationList(RevocationFileLog(path))
    await first.revoke(RevocationKind.SID, "sid-laptop")
    await first.close()
    restarted = RevocationList(RevocationFileLog(path))
    await restarted.start()
    try:
        assert restarted.covers(record(provider_sid="sid-laptop"))
    finally:
        await restarted.close()


async def test_an_unwritable_log_is_a_store_failure_and_nothing_is_applied(tmp_path: Path) -> None:
    """A revocation that could not be shared is reported (503 upstream), not silently local."""
    from proxy.sessions.store import StoreUnavailable  # noqa: PLC0415

    revocations = RevocationList(RevocationFileLog(tmp_path / "missing" / "revocations.log"))
    with pytest.raises(StoreUnavailable):
        await revocations.revoke(RevocationKind.USER, "alice")
    assert not revocations.covers(record(created_at=0))
    await revocations.close()


async def test_a_list_replacing_a_memory_one_takes_over_what_it_held(tmp_path: Path) -> None:
    """A reload that replaces the list (one process: memory only) carries the revocations in
    force into the new one, and into its shared log when it has one; lifted ones stay lifted."""
    before = RevocationList()
    await before.revoke(RevocationKind.USER, "alice")
    await before.revoke(RevocationKind.USER, "bob")
    await before.lift(RevocationKind.USER, "bob")
    path = tmp_path / "revocations.log"
    for after in (RevocationList(), RevocationList(RevocationFileLog(path), source=path)):
        await after.take_over(before)
        assert [(e.kind, e.value) for e in after.view.active()] == [(RevocationKind.USER, "alice")]
        await after.close()
    reader = RevocationList(RevocationFileLog(path), source=path)
    await reader.start()
    assert [e.value for e in reader.view.active()] == ["alice"]
    await reader.close()


async def test_a_list_on_the_same_shared_log_writes_nothing_again(tmp_path: Path) -> None:
    """Lists that read the same log (a reload that changed only the secrets) share what is in
    force already: taking over appends nothing."""
    path = tmp_path / "revocations.log"
    before = RevocationList(RevocationFileLog(path), source=path)
    await before.revoke(RevocationKind.USER, "alice")
    size = path.stat().st_size
    after = RevocationList(RevocationFileLog(path), source=path)
    await after.start()

    await after.take_over(before)

    assert path.stat().st_size == size
    assert [e.value for e in after.view.active()] == ["alice"]
    await before.close()
    await after.close()
