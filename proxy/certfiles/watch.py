"""Contexts built from certificate files, rebuilt when the files change; the old kept on failure.

A change is noticed by polling each file's `stat()` through its symlinks (device, inode, mtime,
size). Kubernetes updates a Secret volume by pointing `..data` at a new directory in one rename:
the names the config gives (`tls.crt` -> `..data/tls.crt`) then resolve to new inodes, which
inotify on the names would miss. cert-manager rotates certificates living an hour, so a few
seconds of polling is plenty, and a stat is cheap. Stats and reads run in a thread
(asyncio.to_thread), never on the event loop.

A rebuilt context serves new handshakes only; connections open on the old one go on. New files
that cannot be used (unparsable, a key not the certificate's, an expired certificate, half of a
pair written) are refused: the old context keeps serving, and the next change is tried again.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from proxy.config.tls_context import BuiltContext, TLSFileError, Validity

_log = logging.getLogger("idgate.certificates")

#: A file as last seen: (device, inode, mtime in ns, size) of what its path resolves to.
_Stat = tuple[int, int, int, int] | None
DEFAULT_POLL_SECONDS: Final = 5.0


class CertificateEvents(Protocol):
    """Where reloads and expiries are reported (the metrics)."""

    def reloaded(self, role: str, *, ok: bool) -> None: ...

    def validity(self, soonest: Validity) -> None:
        """`soonest`: of all certificates of its role in use, the one expiring first."""


def _stat(paths: tuple[Path, ...]) -> tuple[_Stat, ...]:
    seen: list[_Stat] = []
    for path in paths:
        try:
            found = path.stat()  # follows symlinks: a swapped `..data` is a new inode
        except OSError:
            seen.append(None)
        else:
            seen.append((found.st_dev, found.st_ino, found.st_mtime_ns, found.st_size))
    return tuple(seen)


class WatchedContext:
    """The newest usable context built from `paths`; `refresh()` rebuilds it if they changed."""

    __slots__ = ("_build", "_seen", "current", "name", "paths", "role")

    def __init__(
        self,
        *,
        role: str,
        name: str,
        paths: tuple[Path, ...],
        build: Callable[[], BuiltContext],
        built: BuiltContext,
        seen: tuple[_Stat, ...],
    ) -> None:
        self.role = role
        """`listener` or `upstream`: the reload metric's label."""
        self.name = name
        """What the log calls it (`tls`, `upstream_tls (its files)`)."""
        self.paths = paths
        self.current = built
        self._build = build
        self._seen = seen

    @classmethod
    async def load(
        cls, *, role: str, name: str, paths: tuple[Path, ...], build: Callable[[], BuiltContext]
    ) -> WatchedContext:
        """Built now; raises TLSFileError when the files are unusable (nothing to fall back on)."""
        seen = await asyncio.to_thread(_stat, paths)
        built = await asyncio.to_thread(build)
        return cls(role=role, name=name, paths=paths, build=build, built=built, seen=seen)

    @property
    def context(self) -> ssl.SSLContext:
        return self.current.context

    async def refresh(self) -> bool | None:
        """None when no file changed; True when the new files now serve; False when refused."""
        seen = await asyncio.to_thread(_stat, self.paths)
        if seen == self._seen:
            return None
        # Remembered before building: a change during the build is seen at the next poll, and a
        # refused state is not tried again until a file changes once more.
        self._seen = seen
        try:
            self.current = await asyncio.to_thread(self._build)
        except TLSFileError as error:
            _log.error(
                "certificate reload refused, the previous one keeps serving: %s.%s %s",
                self.name,
                error.key,
                error,
            )
            return False
        except Exception:  # noqa: BLE001 (whatever broke the build, the old context keeps serving)
            _log.exception(
                "certificate reload refused, the previous one keeps serving: %s", self.name
            )
            return False
        _log.info("certificates reloaded: %s", self.name)
        return True


class CertificateWatcher:
    """Polls every WatchedContext added to it; reports reloads and expiries to `events`."""

    def __init__(
        self, events: CertificateEvents, *, poll_seconds: float = DEFAULT_POLL_SECONDS
    ) -> None:
        self.poll_seconds = poll_seconds
        self._events = events
        self._watched: list[WatchedContext] = []

    def add(self, watched: WatchedContext) -> None:
        self._watched.append(watched)
        self._report_expiries()

    def remove(self, watched: WatchedContext) -> None:
        if watched in self._watched:
            self._watched.remove(watched)
            self._report_expiries()

    async def poll(self) -> None:
        """Refresh each watched context once."""
        for watched in list(self._watched):
            result = await watched.refresh()
            if result is not None:
                self._events.reloaded(watched.role, ok=result)
        self._report_expiries()

    async def run(self) -> None:
        """Poll every `poll_seconds` until cancelled."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.poll()
            except Exception:  # noqa: BLE001 (a bad poll must not end the rotation for good)
                _log.exception("polling certificate files failed")

    def _report_expiries(self) -> None:
        """Per role, the soonest-expiring certificate in use: what an alert must see."""
        soonest: dict[str, Validity] = {}
        for watched in self._watched:
            for validity in watched.current.expiries:
                known = soonest.get(validity.role)
                if known is None or validity.not_after < known.not_after:
                    soonest[validity.role] = validity
        for validity in soonest.values():
            self._events.validity(validity)
