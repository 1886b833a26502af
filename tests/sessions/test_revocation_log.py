"""The host's shared revocation file: appends seen by other readers, compaction, torn lines."""

from __future__ import annotations

import time
from pathlib import Path

from proxy.sessions.revocation_log import RevocationFileLog
from proxy.sessions.revocations import Revocation, RevocationKind


def revocation(value: str, *, lifted: bool = False) -> Revocation:
    now = time.time()
    return Revocation(
        kind=RevocationKind.USER, value=value, revoked_at=now, expires_at=now + 60, lifted=lifted
    )


async def test_another_process_reads_what_one_appended_once(tmp_path: Path) -> None:
    """A reader gets the whole file first, then only the lines appended since."""
    path = tmp_path / "revocations.log"
    writer, reader = RevocationFileLog(path), RevocationFileLog(path)
    assert await reader.read() == (False, [])  # no file yet
    await writer.append(revocation("alice"))
    full, events = await reader.read()
    assert full
    assert [event.value for event in events] == ["alice"]
    await writer.append(revocation("bob"))
    assert [event.value for event in (await reader.read())[1]] == ["bob"]
    assert await reader.read() == (False, [])
    assert path.stat().st_mode & 0o777 == 0o600
    await reader.close()


async def test_a_line_still_being_written_is_read_next_time(tmp_path: Path) -> None:
    """Only complete lines are taken; the rest waits for its newline."""
    path = tmp_path / "revocations.log"
    reader = RevocationFileLog(path)
    line = revocation("alice").to_json()
    path.write_text(line[:10])
    assert (await reader.read())[1] == []
    path.write_text(line + "\n")
    assert [event.value for event in (await reader.read())[1]] == ["alice"]
    await reader.close()


async def test_the_file_is_compacted_and_readers_start_over(tmp_path: Path) -> None:
    """Past max_bytes the file keeps only live revocations; a reader rereads it whole."""
    path = tmp_path / "revocations.log"
    writer, reader = RevocationFileLog(path, max_bytes=1000), RevocationFileLog(path)
    await writer.append(revocation("alice"))
    await reader.read()
    for n in range(10):
        await writer.append(revocation(f"user{n}"))
        await writer.append(revocation(f"user{n}", lifted=True))
    assert path.stat().st_size < 1000
    full, events = await reader.read()
    assert full
    assert "alice" in {event.value for event in events}
    await reader.close()


async def test_a_garbled_line_is_skipped(tmp_path: Path) -> None:
    """A line that is not a revocation does not stop the ones after it."""
    path = tmp_path / "revocations.log"
    path.write_text("garbage\n" + revocation("alice").to_json() + "\n")
    reader = RevocationFileLog(path)
    assert [event.value for event in (await reader.read())[1]] == ["alice"]
    await reader.close()
