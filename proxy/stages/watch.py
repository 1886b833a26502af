"""Continuous verification for connections that outlive their request (WebSocket tunnels).

A tunnel is authorized once, at its handshake; then the identity that opened it is held to it:
until the principal's `expires_at`, and for a session, by identifying its cookies again every
`refresh_interval` and authorizing them against the route the handshake matched, under whatever
configuration is current by then (a reload that revokes access ends the tunnel too).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from proxy.errors import IdgateError
from proxy.identity.principal import CredentialSource
from proxy.policy.evaluate import evaluate
from proxy.runtime import RUNTIME_KEY
from proxy.sessions.store import CookieChange
from proxy.stages.context import RequestContext

_log = logging.getLogger("idgate.tunnel")

Recheck = Callable[[], Awaitable[float | None]]
"""Verifies the identity again: its new `expires_at`, or None when it no longer holds."""

EXPIRED: Final = "identity expired"
REVOKED: Final = "identity no longer valid"


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityWatch:
    """How long the identity behind a tunnel holds, and how to find out again."""

    expires_at: float
    """Unix time (the principal's `expires_at`)."""
    recheck: Recheck | None = None
    interval: float = 0.0
    """Seconds between rechecks."""
    clock: Callable[[], float] = time.time

    async def ended(self) -> str:
        """Returns (why) once the identity no longer holds; never while it does."""
        loop = asyncio.get_running_loop()
        expires_at = self.expires_at
        while True:
            # Loop time, not wall time, so that a clock step does not move the deadline.
            expiry = loop.time() + (expires_at - self.clock())
            if self.recheck is None or expiry <= loop.time() + self.interval:
                await asyncio.sleep(expiry - loop.time())
                return EXPIRED
            await asyncio.sleep(self.interval)
            try:
                renewed = await self.recheck()
            except Exception:  # noqa: BLE001 (fail closed: a check that breaks ends the tunnel)
                _log.exception("identity re-check failed")
                return REVOKED
            if renewed is None:
                return REVOKED
            expires_at = renewed


def identity_watch(request: web.Request, ctx: RequestContext) -> IdentityWatch | None:
    """How long the identity that opened a long-lived connection holds, and how to check again."""
    principal = ctx.principal
    if principal is None:
        return None  # a public route: nobody to hold to it
    if principal.source is not CredentialSource.SESSION:
        return IdentityWatch(expires_at=principal.expires_at)
    return IdentityWatch(
        expires_at=principal.expires_at,
        recheck=_session_recheck(request, ctx),
        interval=ctx.runtime.settings.session.refresh_seconds,
    )


def _session_recheck(request: web.Request, ctx: RequestContext) -> Recheck:
    """Identify the socket's session again, as a new request with its cookies would be, and
    authorize it against the route its handshake matched, under the configuration now current."""
    # A refreshed session's new cookie cannot reach the browser over a WebSocket, so the tunnel
    # keeps its own copy: the next check then starts from the refreshed session.
    cookies = dict(request.cookies)

    async def recheck() -> float | None:
        runtime = request.app[RUNTIME_KEY].current
        try:
            session = await runtime.sessions.identify(cookies)
        except IdgateError:
            return None
        if session is None:
            return None
        _apply(cookies, session.cookies)
        route = runtime.routes.match(host=ctx.host, path=ctx.path, method=ctx.method)
        if route is None or not evaluate(route, session.principal).lets_through:
            return None
        return session.principal.expires_at

    return recheck


def _apply(cookies: dict[str, str], changes: list[CookieChange]) -> None:
    for change in changes:
        if change.value is None:
            cookies.pop(change.name, None)
        else:
            cookies[change.name] = change.value
