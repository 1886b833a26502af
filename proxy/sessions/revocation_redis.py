"""Where replicas share their revocations: one Redis sorted set, scored by expiry.

`<prefix>revocations` holds each revocation as its JSON (kind, value, time, expiry) scored by
its expiry, so a read first drops what expired (ZREMRANGEBYSCORE) and then takes the rest in
expiry order: a later revocation of the same user expires later and so wins. A lift removes the
members of that kind and value. The set is capped at MAX_ENTRIES (the soonest to expire go).
Every Redis failure becomes StoreUnavailable, named by its class only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from proxy.config.model import RedisSettings
from proxy.sessions.redis_client import connect, reaching_redis
from proxy.sessions.revocations import (
    MAX_ENTRIES,
    Revocation,
    RevocationFormatError,
)


class RevocationRedisLog:
    def __init__(
        self,
        redis: RedisSettings,
        *,
        key_prefix: str = "idgate:",
        timeout_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connection = connect(redis, timeout_seconds=timeout_seconds)
        self._redis = self._connection.client
        self._key = f"{key_prefix}revocations"
        self._clock = clock

    async def append(self, event: Revocation) -> None:
        with reaching_redis():
            if event.lifted:
                members = await self._redis.zrange(self._key, 0, -1)
                gone = [member for member in _strings(members) if _names(member, event)]
                if gone:
                    await self._redis.zrem(self._key, *gone)
                return
            await self._redis.zadd(self._key, {event.to_json(): event.expires_at})
            excess = int(await self._redis.zcard(self._key)) - MAX_ENTRIES
            if excess > 0:
                await self._redis.zremrangebyrank(self._key, 0, excess - 1)

    async def read(self) -> tuple[bool, list[Revocation]]:
        """Always the whole live set."""
        now = self._clock()
        with reaching_redis():
            await self._redis.zremrangebyscore(self._key, "-inf", now)
            members = await self._redis.zrangebyscore(self._key, now, "+inf")
        events = []
        for member in _strings(members):
            try:
                events.append(Revocation.from_json(member))
            except RevocationFormatError:
                continue
        return True, events

    async def close(self) -> None:
        await self._connection.close()


def _strings(members: object) -> list[bytes]:
    """The members of a ZRANGE reply (redis-py types it loosely)."""
    if not isinstance(members, list):
        return []
    return [member for member in members if isinstance(member, bytes)]


def _names(member: bytes, event: Revocation) -> bool:
    try:
        entry = Revocation.from_json(member)
    except RevocationFormatError:
        return False
    return entry.kind is event.kind and entry.value == event.value
