"""The revocation list a process checks, kept in step with the one its host or replicas share.

A revocation is written to the shared log and applied here at once; what other workers and
replicas wrote is read every POLL_SECONDS, so it takes effect everywhere within about that long.
Which log: Redis when `session.redis` is configured (every replica, either store), else the
supervisor's file when there are several workers (every worker of this host), else only this
process's memory (one process: nothing to share).

A log that cannot be read keeps the last view and is retried at the next poll: revocations
already known stay in force. A reload that replaces the list (the session settings changed)
carries the revocations in force over to the new one, unless both read the same shared log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Protocol

from proxy.config.model import Settings
from proxy.sessions.model import SessionRecord
from proxy.sessions.revocation_log import ENV, RevocationFileLog
from proxy.sessions.revocations import Revocation, RevocationKind, Revocations
from proxy.sessions.store import StoreUnavailable

POLL_SECONDS: Final = 1.0
#: A revocation is held at least this long, so it outlives the bearer tokens it refuses (their
#: lifetime is the provider's; a day covers common access tokens) as well as every session.
MIN_HOLD_SECONDS: Final = 24 * 3600

_log = logging.getLogger("idgate.sessions")


class RevocationLog(Protocol):
    async def append(self, event: Revocation) -> None: ...

    async def read(self) -> tuple[bool, list[Revocation]]:
        """(whether this is the whole list, the events); raises StoreUnavailable or OSError."""
        ...

    async def close(self) -> None: ...


class MemoryOnly:
    """One process: there is no one to share with."""

    async def append(self, event: Revocation) -> None:
        """Applied in memory by the list itself."""

    async def read(self) -> tuple[bool, list[Revocation]]:
        return False, []

    async def close(self) -> None:
        """Nothing held."""


class RevocationList:
    def __init__(
        self,
        log: RevocationLog | None = None,
        *,
        hold_seconds: float = MIN_HOLD_SECONDS,
        clock: Callable[[], float] = time.time,
        source: object = None,
    ) -> None:
        """`source` names where a shared log is (a Redis server, a file): two lists of the same
        source read the same revocations."""
        if hold_seconds <= 0:
            raise ValueError("a revocation must be held for a positive time")
        self._log: RevocationLog = log if log is not None else MemoryOnly()
        self._source = source
        self._hold = hold_seconds
        self._clock = clock
        self.view = Revocations(clock=clock)
        self._poller: asyncio.Task[None] | None = None
        self._failing = False
        self._reading = asyncio.Lock()

    @property
    def shared(self) -> bool:
        return not isinstance(self._log, MemoryOnly)

    async def start(self) -> None:
        """Read the shared list now, then follow it in the background."""
        if not self.shared or self._poller is not None:
            return
        await self._sync_logged()
        self._poller = asyncio.get_running_loop().create_task(self._follow())

    async def revoke(self, kind: RevocationKind, value: str) -> Revocation:
        now = self._clock()
        event = Revocation(kind=kind, value=value, revoked_at=now, expires_at=now + self._hold)
        await self._write(event)
        return event

    async def lift(self, kind: RevocationKind, value: str) -> bool:
        """Whether a revocation of this kind and value was in force (here, before the lift)."""
        await self.sync()
        known = any(entry.kind is kind and entry.value == value for entry in self.view.active())
        now = self._clock()
        await self._write(
            Revocation(kind=kind, value=value, revoked_at=now, expires_at=now, lifted=True)
        )
        return known

    async def take_over(self, previous: RevocationList) -> None:
        """Hold what `previous` (the list this one replaces) holds in force, writing it to this
        list's log unless `previous` reads that same log; raises StoreUnavailable or OSError."""
        if self.shared and self._source == previous._source:
            return
        carried = previous.view.active()
        for event in carried:
            await self._log.append(event)
        self.view.apply(carried)

    async def sync(self) -> None:
        """Take in what the other processes wrote; raises StoreUnavailable or OSError."""
        async with self._reading:  # one read at a time: a file log keeps its read position
            full, events = await self._log.read()
        if full:
            self.view.replace(events)
        else:
            self.view.apply(events)
            self.view.expire()

    def covers(self, record: SessionRecord) -> bool:
        return self.view.covers(record)

    def covers_token(self, *, user: str, issued_at: float | None) -> bool:
        return self.view.covers_token(user=user, issued_at=issued_at)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        await self._log.close()

    async def _write(self, event: Revocation) -> None:
        try:
            await self._log.append(event)
        except OSError as error:
            raise StoreUnavailable(f"revocation log unavailable ({type(error).__name__})") from None
        self.view.apply([event])

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            await self._sync_logged()

    async def _sync_logged(self) -> None:
        try:
            await self.sync()
        except (StoreUnavailable, OSError) as error:
            # Once per outage, not once a second.
            if not self._failing:
                _log.warning(
                    "revocation list not read, the last one stays (%s)", type(error).__name__
                )
            self._failing = True
            return
        if self._failing:
            _log.info("revocation list read again")
        self._failing = False


def build_revocation_list(
    settings: Settings, environ: Mapping[str, str] = os.environ
) -> RevocationList:
    """The list for this process: Redis, the host's file, or memory only (see the docstring)."""
    hold = max(settings.session.lifetime_seconds, MIN_HOLD_SECONDS)
    redis = settings.session.redis
    if redis is not None:
        # redis-py only when the config names a Redis (proxy/sessions/redis_client.py says why).
        from proxy.sessions.revocation_redis import RevocationRedisLog  # noqa: PLC0415

        return RevocationList(RevocationRedisLog(redis), hold_seconds=hold, source=redis)
    if environ.get(ENV):
        path = Path(environ[ENV])
        return RevocationList(RevocationFileLog(path), hold_seconds=hold, source=path)
    return RevocationList(hold_seconds=hold)


async def start_revocation_list(
    settings: Settings, previous: RevocationList | None, environ: Mapping[str, str] = os.environ
) -> RevocationList:
    """The list for these settings, following its log and holding what `previous` (the list it
    replaces on reload) holds in force; raises StoreUnavailable, naming `session.redis`, when
    those cannot be carried over (the caller keeps `previous`)."""
    revocations = build_revocation_list(settings, environ)
    await revocations.start()
    if previous is None:
        return revocations
    try:
        await revocations.take_over(previous)
    except (StoreUnavailable, OSError) as error:
        await revocations.close()
        raise StoreUnavailable(
            f"session.redis: the revocations in force cannot be carried over to the new"
            f" revocation list ({error})"
        ) from None
    return revocations
