"""The SessionStore seam: where a record lives between requests, and the cookies that find it.

Stores speak in cookie changes rather than aiohttp responses, so they stay testable without a
server and one function (proxy/sessions/cookies.py) writes every session Set-Cookie with the
same attributes. Expiry by lifetime and idle timeout is the session manager's business; a store
only answers whether a cookie opens to a genuine, not revoked record.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from proxy.errors import IdgateError, ProviderUnavailable
from proxy.sessions.model import SessionRecord, SignInOrigin


class InvalidSession(Exception):
    """A session cookie is present but forged, truncated, stale, revoked or unreadable.

    The caller answers 401 and clears the cookies; the message never holds cookie bytes.
    """


class StoreUnavailable(ProviderUnavailable):
    """The backing store (Redis) cannot be reached: fail closed, 503 wherever it surfaces (a
    caller that does not handle it still answers 503, never 500)."""


class SessionTooLarge(IdgateError):
    """A record too large for the browser's cookies (the provider's tokens and claims): 500, and
    the message names the fix. Never written, so no later request is refused for its size."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CookieChange:
    """One Set-Cookie for the session: a value to set, or (`value is None`) a deletion."""

    name: str
    value: str | None
    max_age: int | None = None
    """Seconds the browser keeps it; None for a browser-session cookie."""


class SessionStore(Protocol):
    async def load(self, cookies: Mapping[str, str]) -> SessionRecord | None:
        """The record the request's cookies name; None when there is no session cookie at all.

        Raises InvalidSession for a cookie that does not open to a live record, and
        StoreUnavailable when the store cannot answer.
        """
        ...

    async def save(
        self,
        record: SessionRecord,
        cookies: Mapping[str, str],
        *,
        max_age: int,
        origin: SignInOrigin | None = None,
    ) -> list[CookieChange]:
        """Persist `record`; the cookie changes that make the browser carry it (including
        deletion of chunks a previous, larger cookie used). `origin` is given at sign-in, for a
        store that lists sessions (proxy/sessions/session_index.py)."""
        ...

    async def clear(self, cookies: Mapping[str, str]) -> list[CookieChange]:
        """Forget the session these cookies name (server side too); the deletions to send."""
        ...

    async def end_sessions(self, *, sid: str | None, sub: str | None) -> int:
        """Back-channel logout: end every session with this provider `sid`, or of this `sub`.
        Returns how many were known to end (the cookie store records a revocation instead)."""
        ...

    def refresh_lock(self, session_id: str) -> AbstractAsyncContextManager[bool]:
        """Held while one request refreshes a session's tokens; yields False when another holder
        (request, worker or replica) already refreshes it, so the caller reloads instead."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot serve (gates /readyz)."""
        ...

    async def close(self) -> None: ...
