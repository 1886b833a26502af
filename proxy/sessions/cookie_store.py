"""The default store: the whole record sealed into the browser's cookie, split when too large.

A sealed record that fits in `chunk_size` travels in the base cookie; a larger one in
`<base>_0`, `<base>_1`, ... and the base cookie is deleted. The seal's associated data is the
base cookie name, so a value copied into another idgate cookie (the login state, another
deployment's session) does not open. Chunks are not numbered inside the seal: a missing,
extra or foreign chunk changes the reassembled value, and the AEAD tag refuses it. A session has
at most MAX_CHUNKS chunks, so every cookie a gateway must keep from the tool can be counted.

Nothing is kept server side, so a back-channel logout is remembered as a revocation in the
revocation list this host's workers (or, with Redis, all replicas) share (revocation_list.py),
and a refresh lock only serialises this process's requests.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Final

from proxy.config.model import Secret
from proxy.sessions.crypto import Sealer, SealError
from proxy.sessions.model import SessionFormatError, SessionRecord, SignInOrigin
from proxy.sessions.revocation_list import RevocationList
from proxy.sessions.revocations import RevocationKind
from proxy.sessions.store import CookieChange, InvalidSession, SessionTooLarge

PURPOSE: Final = b"idgate session v1"
#: Opened cookies remembered, so a browser's every request does not decrypt and parse its cookie
#: again (a third of the session path's own cost). A sealed value always opens to the same
#: record, and every check of the record (expiry, refresh, revocation) still runs per request.
_OPENED_LIMIT: Final = 1024
#: The most cookies a session is split into. The browser sends them in one Cookie header, which
#: idgate reads up to 32 KiB (proxy/server/app.py): eight chunks of the default 3800 characters
#: fill 30 KiB of it and leave the tools' own cookies room. A larger record is refused when saved
#: rather than written for the next request to be refused, and `idgate render nginx` takes the
#: whole cookie and this many chunks out of what the tool gets (proxy/render/cookie_maps.py).
MAX_CHUNKS: Final = 8


class CookieStore:
    def __init__(
        self,
        secrets: Sequence[Secret],
        *,
        cookie_name: str,
        max_lifetime_seconds: float,
        chunk_size: int = 3800,
        clock: Callable[[], float] = time.time,
        revocations: RevocationList | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("the cookie chunk size must be positive")
        self._sealer = Sealer(secrets, purpose=PURPOSE)
        self._name = cookie_name
        self._aad = cookie_name.encode()
        self._chunk_size = chunk_size
        self._chunk_pattern = re.compile(re.escape(cookie_name) + r"_(0|[1-9][0-9]{0,3})")
        self.revocations = (
            revocations
            if revocations is not None
            else RevocationList(hold_seconds=max_lifetime_seconds, clock=clock)
        )
        self._refreshing: set[str] = set()
        self._opened: dict[str, SessionRecord] = {}

    async def load(self, cookies: Mapping[str, str]) -> SessionRecord | None:
        chunks = self._chunks(cookies)
        if self._name in cookies:
            if chunks:
                raise InvalidSession("session cookie is both whole and chunked")
            sealed = cookies[self._name]
        elif chunks:
            if len(chunks) > MAX_CHUNKS:
                raise InvalidSession("session cookie has more chunks than idgate writes")
            if sorted(chunks) != list(range(len(chunks))):
                raise InvalidSession("session cookie chunks are missing")
            sealed = "".join(chunks[index] for index in range(len(chunks)))
        else:
            return None
        record = self._opened.get(sealed)
        if record is None:
            record = self._open(sealed)
        if self.revocations.covers(record):
            raise InvalidSession("session was revoked (back-channel logout or idgate revoke)")
        return record

    def _open(self, sealed: str) -> SessionRecord:
        try:
            record = SessionRecord.from_bytes(self._sealer.open(sealed, aad=self._aad))
        except (SealError, SessionFormatError) as error:
            raise InvalidSession(f"session cookie does not open: {error}") from None
        if len(self._opened) >= _OPENED_LIMIT:
            del self._opened[next(iter(self._opened))]  # the oldest
        self._opened[sealed] = record
        return record

    async def save(
        self,
        record: SessionRecord,
        cookies: Mapping[str, str],
        *,
        max_age: int,
        origin: SignInOrigin | None = None,
    ) -> list[CookieChange]:
        """The browser holds the only copy: nothing lists it, so `origin` is not kept."""
        sealed = self._sealer.seal(record.to_bytes(), aad=self._aad)
        if len(sealed) <= self._chunk_size:
            changes = [CookieChange(name=self._name, value=sealed, max_age=max_age)]
            stale = set(self._chunks(cookies))
        else:
            parts = [
                sealed[start : start + self._chunk_size]
                for start in range(0, len(sealed), self._chunk_size)
            ]
            if len(parts) > MAX_CHUNKS:
                raise SessionTooLarge(
                    f"a session of {len(sealed)} sealed characters needs {len(parts)} cookies, "
                    f"more than the cookie store's {MAX_CHUNKS}: use session.store: redis"
                )
            changes = [
                CookieChange(name=self._chunk_name(index), value=part, max_age=max_age)
                for index, part in enumerate(parts)
            ]
            if self._name in cookies:
                changes.append(CookieChange(name=self._name, value=None))
            stale = {index for index in self._chunks(cookies) if index >= len(parts)}
        changes.extend(
            CookieChange(name=self._chunk_name(index), value=None) for index in sorted(stale)
        )
        return changes

    async def clear(self, cookies: Mapping[str, str]) -> list[CookieChange]:
        return [CookieChange(name=self._name, value=None)] + [
            CookieChange(name=self._chunk_name(index), value=None)
            for index in sorted(self._chunks(cookies))
        ]

    async def end_sessions(self, *, sid: str | None, sub: str | None) -> int:
        # OpenID Connect Back-Channel Logout 1.0, 2.6: "If a sid Claim is not present, the intent
        # is that all sessions at the RP for the End-User identified by the iss and sub Claims be
        # logged out." With a sid, only that provider session ends.
        if sid is not None:
            await self.revocations.revoke(RevocationKind.SID, sid)
        elif sub is not None:
            await self.revocations.revoke(RevocationKind.SUBJECT, sub)
        return 0

    @asynccontextmanager
    async def refresh_lock(self, session_id: str) -> AsyncIterator[bool]:
        if session_id in self._refreshing:
            yield False
            return
        self._refreshing.add(session_id)
        try:
            yield True
        finally:
            self._refreshing.discard(session_id)

    async def ping(self) -> None:
        """Always ready: there is nothing to reach."""

    async def close(self) -> None:
        await self.revocations.close()

    def _chunks(self, cookies: Mapping[str, str]) -> dict[int, str]:
        """The request's chunk cookies of this session, by index."""
        found: dict[int, str] = {}
        for name, value in cookies.items():
            match = self._chunk_pattern.fullmatch(name)
            if match is not None:
                found[int(match[1])] = value
        return found

    def _chunk_name(self, index: int) -> str:
        return f"{self._name}_{index}"
