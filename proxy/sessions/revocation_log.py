"""Where a host's workers share their revocations: an append-only file of JSON lines.

The supervisor names the file (in a fresh 0700 directory, like the multiprocess metrics one) in
`IDGATE_REVOCATION_LOG`; every worker appends the revocations it learns (a back-channel logout it
received) and reads the lines the others appended. A line is one `write()` on an `O_APPEND`
descriptor under an exclusive `flock`, so lines never interleave. The file is replaced by a
compacted copy (live revocations only) once it passes `max_bytes`; a reader notices the new inode
and reads it from the start. Blocking file I/O runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Final

from proxy.sessions.revocations import Revocation, RevocationFormatError, Revocations

ENV: Final = "IDGATE_REVOCATION_LOG"
#: A line is ~200 bytes: 4 MiB holds ~20,000 events before the file is compacted.
MAX_BYTES: Final = 4 * 1024 * 1024

_log = logging.getLogger("idgate.sessions")


class RevocationFileLog:
    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self._path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._max_bytes = max_bytes
        self._file: BinaryIO | None = None
        self._offset = 0

    async def append(self, event: Revocation) -> None:
        await asyncio.to_thread(self._append, event)

    async def read(self) -> tuple[bool, list[Revocation]]:
        """(True, everything) after a compaction or at the first read; else (False, new lines)."""
        return await asyncio.to_thread(self._read)

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _append(self, event: Revocation) -> None:
        line = (event.to_json() + "\n").encode()
        with self._locked():
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > self._max_bytes:
                self._compact()

    def _compact(self) -> None:
        """Under the lock: the live revocations only, swapped in with a rename."""
        state = Revocations()
        state.apply(_parse(self._path.read_bytes()))
        temporary = self._path.with_name(self._path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(entry.to_json() + "\n" for entry in state.active()).encode())
        finally:
            os.close(fd)
        temporary.replace(self._path)

    def _read(self) -> tuple[bool, list[Revocation]]:
        # The file read last stays open: its inode cannot be reused while held, so a different
        # inode at the path always means a compacted file.
        full = False
        try:
            current = self._path.stat().st_ino
        except FileNotFoundError:
            return False, []
        if self._file is None or os.fstat(self._file.fileno()).st_ino != current:
            if self._file is not None:
                self._file.close()
            try:
                self._file = self._path.open("rb")
            except FileNotFoundError:
                self._file = None
                return False, []
            full, self._offset = True, 0
        self._file.seek(self._offset)
        data = self._file.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._offset += len(complete)
        return full, _parse(complete)


def _parse(data: bytes) -> list[Revocation]:
    events = []
    for line in data.splitlines():
        try:
            events.append(Revocation.from_json(line))
        except RevocationFormatError:
            _log.warning("revocation log: an unreadable line skipped")
    return events
