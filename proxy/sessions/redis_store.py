"""The replica store: a ticket in the cookie, only ciphertext in Redis (oauth2-proxy's design).

The cookie holds `v1.<session id>.<key>`: the session id names the Redis entry, and a random
256-bit key, new for every session and never sent to Redis, decrypts it. Redis holds
`<prefix>s:{<sha256(session id)>}` -> AES-256-GCM(record) with the Redis key as associated data, so
a dump of Redis reveals no claim or token, and a ciphertext moved under another key does not open.
Two sets per session let a back-channel logout find records without decrypting them:
`<prefix>sid:{<sha256(provider sid)>}` and `<prefix>sub:{<sha256(subject)>}`, each holding record
keys and living as long as the longest record it names.

The braces are a Redis Cluster hash tag: a key's slot is the hash of the part inside them, so a
session's record and its refresh lock share a slot, and every Lua script here touches one key (one
slot). Nothing needs a multi-key script: a save writes the logout indexes first and the record
last, so a record that exists is always findable by a logout, and a logout deletes the records it
found (redis-py sends one DEL per slot) and then removes just those from the index. A re-save
only replaces a record that still exists, so a session ended during a request is not revived by
that request's touch or refresh.

Every Redis failure becomes StoreUnavailable, named by its class only: the URL and its password
stay out of messages and logs.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.exceptions import RedisClusterException, RedisError

from proxy.config.model import RedisSettings
from proxy.sessions.crypto import KEY_BYTES, SealError, b64decode, b64encode, decrypt, encrypt
from proxy.sessions.model import SessionFormatError, SessionRecord, SignInOrigin
from proxy.sessions.redis_client import connect, reaching_redis
from proxy.sessions.revocation_list import RevocationList
from proxy.sessions.session_index import SessionIndex
from proxy.sessions.store import CookieChange, InvalidSession

logger = logging.getLogger("idgate.sessions")

_TICKET_VERSION: Final = "v1"
LOCK_MILLISECONDS: Final = 15_000

# KEYS[1] an index set; ARGV[1] a record key, ARGV[2] the record's lifetime in seconds.
# The set keeps the longest lifetime of any record it names (TTL is -1 on a new set).
_INDEX_SCRIPT: Final = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
"""
# Compare-and-delete: a holder whose lock expired must not release the next holder's lock.
_RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Ticket:
    session_id: str
    key: bytes = field(repr=False)

    def encode(self) -> str:
        return f"{_TICKET_VERSION}.{b64encode(self.session_id.encode())}.{b64encode(self.key)}"

    @classmethod
    def decode(cls, value: str) -> _Ticket:
        try:
            version, session_id, key = value.split(".")
            if version != _TICKET_VERSION:
                raise InvalidSession("session ticket has an unknown version")
            ticket = cls(session_id=b64decode(session_id).decode(), key=b64decode(key))
        except (ValueError, SealError):
            raise InvalidSession("session ticket is malformed") from None
        if len(ticket.key) != KEY_BYTES:
            raise InvalidSession("session ticket is malformed")
        return ticket


class RedisStore:
    def __init__(
        self,
        redis: RedisSettings,
        *,
        cookie_name: str,
        key_prefix: str = "idgate:",
        timeout_seconds: float = 2.0,
        revocations: RevocationList | None = None,
    ) -> None:
        self._connection = connect(redis, timeout_seconds=timeout_seconds)
        self._redis = self._connection.client
        self._name = cookie_name
        self._prefix = key_prefix
        self._index_script = self._redis.register_script(_INDEX_SCRIPT)
        self._release_script = self._redis.register_script(_RELEASE_SCRIPT)
        self.revocations = revocations if revocations is not None else RevocationList()
        self.index = SessionIndex(self._connection, key_prefix=key_prefix)

    async def load(self, cookies: Mapping[str, str]) -> SessionRecord | None:
        value = cookies.get(self._name)
        if value is None:
            return None
        ticket = _Ticket.decode(value)
        key = self._key("s", ticket.session_id)
        with reaching_redis():
            sealed = await self._redis.get(key)
        if not isinstance(sealed, bytes):
            raise InvalidSession("session has ended")
        try:
            record = SessionRecord.from_bytes(decrypt(AESGCM(ticket.key), sealed, aad=key.encode()))
        except (SealError, SessionFormatError) as error:
            raise InvalidSession(f"session record does not open: {error}") from None
        if self.revocations.covers(record):
            raise InvalidSession("session was revoked (back-channel logout or idgate revoke)")
        return record

    async def save(
        self,
        record: SessionRecord,
        cookies: Mapping[str, str],
        *,
        max_age: int,
        origin: SignInOrigin | None = None,
    ) -> list[CookieChange]:
        """Store `record` for `max_age` seconds. A ticket already naming this session keeps its
        key (it opened the record in `load`); a ticket of another session ends that session. A
        sign-in (`origin`) is indexed for `idgate sessions`; a re-save moves its last-seen time."""
        if max_age <= 0:
            raise ValueError("a saved session needs a positive max_age")
        previous = self._carried_ticket(cookies)
        resaved = previous is not None and previous.session_id == record.session_id
        if previous is not None and resaved:
            ticket = previous
        else:
            ticket = _Ticket(session_id=record.session_id, key=os.urandom(KEY_BYTES))
        key = self._key("s", record.session_id)
        indexes = [self._key("sub", record.subject)]
        if record.provider_sid is not None:
            indexes.append(self._key("sid", record.provider_sid))
        sealed = encrypt(AESGCM(ticket.key), record.to_bytes(), aad=key.encode())
        with reaching_redis():
            if previous is not None and previous.session_id != record.session_id:
                await self._redis.delete(self._key("s", previous.session_id))
            # Indexes first: should idgate or Redis fail in between, a logout may find a record
            # key that was never written (harmless), never miss a record that was.
            for index in indexes:
                await self._index_script(keys=[index], args=[key, max_age])
            # XX on a re-save: a session signed out or logged out (at any replica) while this
            # request held it stays ended instead of coming back with the touch or refresh.
            await self._redis.set(key, sealed, ex=max_age, xx=resaved)
        if origin is not None:
            await self.index.add(record, origin, max_age=max_age)
        elif resaved:
            await self.index.seen(record, max_age=max_age)
        return [CookieChange(name=self._name, value=ticket.encode(), max_age=max_age)]

    async def clear(self, cookies: Mapping[str, str]) -> list[CookieChange]:
        ticket = self._carried_ticket(cookies)
        if ticket is not None:
            with reaching_redis():
                await self._redis.delete(self._key("s", ticket.session_id))
        return [CookieChange(name=self._name, value=None)]

    async def end_sessions(self, *, sid: str | None, sub: str | None) -> int:
        # OpenID Connect Back-Channel Logout 1.0, 2.6: "If a sid Claim is not present, the intent
        # is that all sessions at the RP for the End-User identified by the iss and sub Claims be
        # logged out." With a sid, only that provider session ends.
        if sid is not None:
            index = self._key("sid", sid)
        elif sub is not None:
            index = self._key("sub", sub)
        else:
            return 0
        with reaching_redis():
            records = list(await self._redis.smembers(index))
            if not records:
                return 0
            ended = await self._redis.delete(*records)
            # Only what was read: a record indexed meanwhile stays findable by the next logout.
            await self._redis.srem(index, *records)
        return int(ended)

    @asynccontextmanager
    async def refresh_lock(self, session_id: str) -> AsyncIterator[bool]:
        """Held for at most LOCK_MILLISECONDS: a refresh outliving it may overlap the next one."""
        key = self._key("lock", session_id)
        owner = os.urandom(16).hex()
        with reaching_redis():
            acquired = await self._redis.set(key, owner, nx=True, px=LOCK_MILLISECONDS)
        if not acquired:
            yield False
            return
        try:
            yield True
        finally:
            try:
                await self._release_script(keys=[key], args=[owner])
            except (RedisError, RedisClusterException, OSError) as error:
                # The refresh itself is done; the lock expires on its own.
                logger.warning("refresh lock not released (%s)", type(error).__name__)

    async def ping(self) -> None:
        with reaching_redis():
            await self._redis.ping()

    async def close(self) -> None:
        await self.revocations.close()
        await self._connection.close()

    def _carried_ticket(self, cookies: Mapping[str, str]) -> _Ticket | None:
        """The request's ticket, or None when it carries none or an unreadable one."""
        value = cookies.get(self._name)
        if value is None:
            return None
        try:
            return _Ticket.decode(value)
        except InvalidSession:
            return None

    def _key(self, kind: str, value: str) -> str:
        return f"{self._prefix}{kind}:{{{hashlib.sha256(value.encode()).hexdigest()}}}"
