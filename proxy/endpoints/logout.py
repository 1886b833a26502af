"""`/oauth2/sign_out` and `/oauth2/backchannel_logout`: ending sessions from either side."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from aiohttp import web

from proxy.endpoints.redirects import vet_redirect
from proxy.errors import BadRequest, InvalidToken, RequestTimeout
from proxy.sessions.provider_revocation import revoke_session_tokens
from proxy.stages.context import RequestContext
from proxy.stages.expect import continue_if_expected
from proxy.stages.pages import NO_STORE, signed_out_page
from proxy.stages.responses import json_response, sign_in_url

_log = logging.getLogger("idgate.logout")

#: A logout token is a few KB; anything near this is not one.
_MAX_LOGOUT_BODY: Final = 64 * 1024


async def sign_out(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """SPEC: "end the session (and the provider session through RP-initiated logout when
    offered)". Cookies and the server-side record go first, whatever happens at the provider;
    then the session's tokens are revoked at the provider (RFC 7009) when it offers that.

    The revocation is awaited here rather than left to a background task: it is bounded by one
    `oidc.http_timeout` (both tokens at once), aiohttp does not cancel a handler whose client goes
    away, a graceful shutdown drains it like any request in flight, and the browser reaches the
    provider's end-session page only once the grant is gone there.

    The provider is reached by a GET redirect, as RP-Initiated Logout 1.0 defines it: a
    cross-site POST would not carry the provider's SameSite=Lax session cookie, so the provider
    could not tell whose session to end. `id_token_hint` rides on that redirect to the provider
    that issued it and nowhere else; the `rd` target never sees a token.
    """
    runtime = ctx.runtime
    settings = runtime.settings
    record, deletions = await runtime.sessions.end(request.cookies)
    ctx.set_cookies.extend(deletions)
    ctx.runtime.metrics.logouts.labels(result="sign_out").inc()
    rd = request.query.get("rd")
    vetted = rd and vet_redirect(
        rd, public_url=settings.public_url, allowed_domains=settings.allowed_redirect_domains
    )
    target = vetted or f"{settings.public_url.rstrip('/')}{settings.prefix}/signed_out"
    location = target
    if record is not None:
        # Named in the decision line: whose session ended, now.
        ctx.principal = record.principal(expires_at=time.time())
        loaded = runtime.provider.metadata is not None
        flow = runtime.sessions.flow() if loaded else None
        await revoke_session_tokens(flow, record, metrics=runtime.metrics)
        if flow is not None:
            provider_logout = flow.end_session_url(
                id_token_hint=record.id_token,
                post_logout_redirect_uri=_absolute(target, public_url=settings.public_url),
            )
            location = provider_logout or target
    response = web.Response(status=302, headers={"Location": location})
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def signed_out(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Where sign-out ends without an `rd` of its own: a page saying so, not a protected home
    page that would start a new sign-in at once."""
    return signed_out_page(
        sign_in_url=sign_in_url(ctx.runtime.settings, "/"), request_id=ctx.request_id
    )


def _absolute(target: str, *, public_url: str) -> str:
    """A vetted local path made absolute on `public_url`. RP-Initiated Logout 1.0 2:
    post_logout_redirect_uri "MUST have been previously registered with the OP", and registered
    URIs are absolute: a bare path is refused there and the provider session stays alive."""
    return public_url.rstrip("/") + target if target.startswith("/") else target


async def backchannel_logout(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """OIDC Back-Channel Logout 1.0 2.8: "If the logout succeeded, the RP MUST respond with HTTP
    200 OK. ... If the logout request was invalid or the logout failed, the RP MUST respond with
    400 Bad Request"."""
    runtime = ctx.runtime
    metrics = runtime.metrics
    if request.content_length is not None and request.content_length > _MAX_LOGOUT_BODY:
        raise BadRequest("logout request too large")
    await continue_if_expected(request)
    try:
        # A body this small arrives at once; one bound for all of it (server.body_idle_timeout).
        async with asyncio.timeout(runtime.settings.server.body_idle_timeout_seconds):
            form = await request.post()
    except TimeoutError:
        raise RequestTimeout("request body stalled") from None
    token = form.get("logout_token")
    if not isinstance(token, str):
        metrics.logouts.labels(result="backchannel_invalid").inc()
        raise BadRequest("logout_token is required")
    try:
        logout = await runtime.logout_tokens.verify(token)
    except InvalidToken as error:
        metrics.logouts.labels(result="backchannel_invalid").inc()
        _log.warning("back-channel logout refused: %s", error.failure.value)
        raise BadRequest("logout_token is not valid") from None
    ended = await runtime.sessions.store.end_sessions(sid=logout.sid, sub=logout.sub)
    metrics.logouts.labels(result="backchannel").inc()
    _log.info("back-channel logout ended %d sessions", ended)
    return json_response({}, status=200)
