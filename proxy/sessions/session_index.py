"""Which sessions a user has, for incident response (`idgate sessions --user`; Redis store only).

The Redis store keeps only ciphertext that needs each browser's key, so listing a user's sessions
needs an index of its own, written where the store writes anyway: at sign-in, and when a re-save
(a touch, at most every tenth of `idle_timeout`, or a refresh) moves `last seen` and the expiry.
Nothing secret is in it: per session its handle, created and last-seen times, the client address
(after trusted-proxy resolution), the user agent (sanitised, truncated), the issuer and the
subject (`sub`, which the revocation check needs); the user is only the key's hash.

The handle is the SHA-256 of the session id, the hash already naming the session's Redis record
(`<prefix>s:{<handle>}`): it cannot be turned back into the id, and a ticket needs the id and the
browser's key besides. `idgate revoke --session HANDLE` revokes by it.

Per user, two keys in one Cluster slot (the hash tag is the user's SHA-256):
`<prefix>us:{<user hash>}` scores each handle by its session's expiry, and
`<prefix>ui:{<user hash>}` holds each handle's details and `<handle>.seen`. An entry expires with
its session (its score; the keys' TTL is the longest session's), at most MAX_SESSIONS_PER_USER are
kept (the soonest to expire go first), and a listing skips entries whose record no longer exists
(signed out, logged out, expired).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from proxy.config.model import SessionSettings, SessionStoreKind
from proxy.sessions.model import SessionRecord, SignInOrigin
from proxy.sessions.redis_client import RedisConnection, connect, reaching_redis

#: Entries kept per user; a user signing in more often loses the oldest from the listing (not
#: from `idgate revoke --user`, which needs no index).
MAX_SESSIONS_PER_USER: Final = 64
#: How long one Redis command of the supervisor's own index connection may take.
TIMEOUT_SECONDS: Final = 2.0

# KEYS[1] the expiry set, KEYS[2] the details hash. ARGV: handle, expiry, details, seen, now,
# cap, TTL in seconds. Drops what expired, adds this session, cuts to the cap, extends the TTLs.
_ADD_SCRIPT: Final = """
local function drop(handles)
  for _, handle in ipairs(handles) do
    redis.call('ZREM', KEYS[1], handle)
    redis.call('HDEL', KEYS[2], handle, handle .. '.seen')
  end
end
drop(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[5]))
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3], ARGV[1] .. '.seen', ARGV[4])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[6])
if excess > 0 then
  drop(redis.call('ZRANGE', KEYS[1], 0, excess - 1))
end
for _, key in ipairs(KEYS) do
  if redis.call('TTL', key) < tonumber(ARGV[7]) then
    redis.call('EXPIRE', key, ARGV[7])
  end
end
"""
# Same keys. ARGV: handle, expiry, seen, TTL. Only an entry still indexed is moved.
_SEEN_SCRIPT: Final = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1] .. '.seen', ARGV[3])
for _, key in ipairs(KEYS) do
  if redis.call('TTL', key) < tonumber(ARGV[4]) then
    redis.call('EXPIRE', key, ARGV[4])
  end
end
return 1
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexedSession:
    """One listed session: what `idgate sessions` shows (and the admin endpoint answers)."""

    handle: str
    issuer: str
    user: str
    subject: str
    created_at: float
    last_seen_at: float
    expires_at: float
    client: str
    user_agent: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "handle": self.handle,
            "issuer": self.issuer,
            "user": self.user,
            "subject": self.subject,
            "created_at": self.created_at,
            "last_seen_at": self.last_seen_at,
            "expires_at": self.expires_at,
            "client": self.client,
            "user_agent": self.user_agent,
        }


@asynccontextmanager
async def session_index_for(settings: SessionSettings) -> AsyncIterator[SessionIndex | None]:
    """An index on a connection of its own (the supervisor's admin endpoints, which have no
    store); None with the cookie store, which has nothing to list."""
    if settings.store is not SessionStoreKind.REDIS or settings.redis is None:
        yield None
        return
    connection = connect(settings.redis, timeout_seconds=TIMEOUT_SECONDS)
    try:
        yield SessionIndex(connection)
    finally:
        await connection.close()


class SessionIndex:
    def __init__(
        self,
        connection: RedisConnection,
        *,
        key_prefix: str = "idgate:",
        max_per_user: int = MAX_SESSIONS_PER_USER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = connection.client
        self._prefix = key_prefix
        self._cap = max_per_user
        self._clock = clock
        self._add = self._redis.register_script(_ADD_SCRIPT)
        self._seen = self._redis.register_script(_SEEN_SCRIPT)

    async def add(self, record: SessionRecord, origin: SignInOrigin, *, max_age: int) -> None:
        """Index a new session living `max_age` seconds from now."""
        now = self._clock()
        details = json.dumps(
            {
                "iss": origin.issuer,
                "sub": record.subject,
                "created": record.created_at,
                "client": origin.client,
                "ua": origin.user_agent,
            },
            separators=(",", ":"),
        )
        with reaching_redis():
            await self._add(
                keys=self._keys(record.user),
                args=[
                    record.handle,
                    now + max_age,
                    details,
                    record.last_seen_at,
                    now,
                    self._cap,
                    max_age,
                ],
            )

    async def seen(self, record: SessionRecord, *, max_age: int) -> None:
        """A re-saved session: its last-seen time and expiry move (when it is still indexed)."""
        with reaching_redis():
            await self._seen(
                keys=self._keys(record.user),
                args=[
                    record.handle,
                    self._clock() + max_age,
                    record.last_seen_at,
                    max_age,
                ],
            )

    async def of_user(self, user: str) -> list[IndexedSession]:
        """The user's indexed sessions whose record still exists, oldest first."""
        expiries_key, details_key = self._keys(user)
        with reaching_redis():
            scored = await self._redis.zrangebyscore(
                expiries_key, self._clock(), "+inf", withscores=True
            )
            details = await self._redis.hgetall(details_key)
            sessions = [
                session
                for handle, expires_at in _scored(scored)
                if (session := _session(user, handle, expires_at, details)) is not None
                and await self._redis.exists(self.record_key(session.handle))
            ]
        return sorted(sessions, key=lambda session: session.created_at)

    def record_key(self, handle: str) -> str:
        """The Redis key of the session record a handle names (proxy/sessions/redis_store.py)."""
        return f"{self._prefix}s:{{{handle}}}"

    def _keys(self, user: str) -> list[str]:
        """The user's expiry set and details hash, in one Cluster slot."""
        tag = hashlib.sha256(user.encode()).hexdigest()
        return [f"{self._prefix}us:{{{tag}}}", f"{self._prefix}ui:{{{tag}}}"]


def _scored(reply: object) -> list[tuple[object, float]]:
    """The (member, score) pairs of a ZRANGEBYSCORE WITHSCORES reply (redis-py types it
    loosely)."""
    if not isinstance(reply, list):
        return []
    return [
        (item[0], float(item[1]))
        for item in reply
        if isinstance(item, tuple | list) and len(item) == 2
    ]


def _session(
    user: str, handle: object, expires_at: float, details: object
) -> IndexedSession | None:
    """One listed entry from the index's raw replies; None for anything malformed."""
    if not isinstance(handle, bytes) or not isinstance(details, dict):
        return None
    raw, seen = details.get(handle), details.get(handle + b".seen")
    try:
        entry = json.loads(raw) if isinstance(raw, bytes) else None
        if not isinstance(entry, dict) or not isinstance(seen, bytes):
            return None
        user_agent = entry.get("ua")
        return IndexedSession(
            handle=handle.decode(),
            issuer=str(entry["iss"]),
            user=user,
            subject=str(entry["sub"]),
            created_at=float(entry["created"]),
            last_seen_at=float(seen),
            expires_at=expires_at,
            client=str(entry["client"]),
            user_agent=user_agent if isinstance(user_agent, str) else None,
        )
    except (KeyError, TypeError, ValueError):
        return None
