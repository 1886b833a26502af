"""Continuous verification for connections that outlive their request (WebSocket tunnels).

A tunnel is authorized once, at its handshake; then the identity that opened it is held to it:
until the principal's `expires_at`, and every `server.tunnel_recheck_interval` by identifying it
again as a new request with the handshake's credentials would be (a session's cookies through the
store and the provider; a token against the revocation list) and authorizing it against the route
the handshake matched, under whatever configuration is current by then (a revocation, or a reload
that takes the route from the identity, ends the tunnel too).
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
from proxy.identity.bearer import check_accepted
from proxy.identity.principal import CredentialSource, Principal
from proxy.policy.evaluate import evaluate
from proxy.runtime import RUNTIME_KEY, Runtime
from proxy.sessions.store import CookieChange
from proxy.stages.context import RequestContext

_log = logging.getLogger("idgate.tunnel")

Recheck = Callable[[], Awaitable[float | None]]
"""Verifies the identity again: its new `expires_at`, or None when it no longer holds."""

Reidentify = Callable[[Runtime], Awaitable[Principal | None]]
"""The tunnel's identity under this runtime; None (or an IdgateError) when it no longer holds."""

EXPIRED: Final = "identity expired"
REVOKED: Final = "identity no longer valid"


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityWatch:
    """How long the identity behind a tunnel holds, and how to find out again."""

    expires_at: float
    """Unix time (the principal's `expires_at`)."""
    recheck: Recheck
    interval: float
    """Seconds between rechecks."""
    clock: Callable[[], float] = time.time

    async def ended(self) -> str:
        """Returns (why) once the identity no longer holds; never while it does."""
        loop = asyncio.get_running_loop()
        expires_at = self.expires_at
        while True:
            # Loop time, not wall time, so that a clock step does not move the deadline.
            expiry = loop.time() + (expires_at - self.clock())
            if expiry <= loop.time() + self.interval:
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
    return IdentityWatch(
        expires_at=principal.expires_at,
        recheck=_recheck(request, ctx, _reidentify(request, principal)),
        interval=ctx.runtime.settings.server.tunnel_recheck_seconds,
    )


def _recheck(request: web.Request, ctx: RequestContext, reidentify: Reidentify) -> Recheck:
    """Identify the tunnel's caller again and authorize it against the route its handshake
    matched, as stages/identify.py and stages/authorize.py would, under the configuration now
    current."""

    async def recheck() -> float | None:
        runtime = request.app[RUNTIME_KEY].current
        try:
            principal = await reidentify(runtime)
            if principal is None:
                return None
            route = runtime.routes.match(host=ctx.host, path=ctx.path, method=ctx.method)
            if route is None:
                return None
            check_accepted(principal.issuer, route.issuers)
        except IdgateError:
            return None
        if not evaluate(route, principal).lets_through:
            return None
        return principal.expires_at

    return recheck


def _reidentify(request: web.Request, principal: Principal) -> Reidentify:
    match principal.source:
        case CredentialSource.SESSION:
            return _session_again(request)
        case CredentialSource.BEARER:
            return _token_unrevoked(principal)
        case CredentialSource.CLIENT_CERT:
            return _certificate_as_is(principal)


def _session_again(request: web.Request) -> Reidentify:
    """The socket's session, loaded (and refreshed when due) as a new request with its cookies
    would load it."""
    # A refreshed session's new cookie cannot reach the browser over a WebSocket, so the tunnel
    # keeps its own copy: the next check then starts from the refreshed session.
    cookies = dict(request.cookies)

    async def again(runtime: Runtime) -> Principal | None:
        session = await runtime.sessions.identify(cookies)
        if session is None:
            return None
        _apply(cookies, session.cookies)
        return session.principal

    return again


def _token_unrevoked(principal: Principal) -> Reidentify:
    """A token says the same until its `exp`; what changes is whether its user is revoked: the
    request path's check (proxy/identity/bearer.py), against the list as this process reads it
    now."""

    async def again(runtime: Runtime) -> Principal:
        return runtime.verifier.unrevoked(principal)

    return again


def _certificate_as_is(principal: Principal) -> Reidentify:
    """A certificate's revocation is its CA's CRL, checked at the handshake; the operator's
    revocation list does not reach certificates on the request path either."""

    async def again(runtime: Runtime) -> Principal:
        return principal

    return again


def _apply(cookies: dict[str, str], changes: list[CookieChange]) -> None:
    for change in changes:
        if change.value is None:
            cookies.pop(change.name, None)
        else:
            cookies[change.name] = change.value
