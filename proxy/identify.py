"""Identify: the request's credentials, in order, become a Principal, or None when there are none.

Identifiers return None for "no credentials of my kind" and raise for "credentials of my kind
that do not verify": a bad bearer token is never rescued by a valid session cookie.
Bearer tokens come first (services and scripts), then the browser's session cookie.
"""

from __future__ import annotations

from aiohttp import web

from proxy.identity.bearer import bearer_token
from proxy.identity.principal import Principal
from proxy.keys import RequestContext
from proxy.runtime import Runtime
from proxy.sessions.manager import SessionEnded


async def identify(request: web.Request, ctx: RequestContext, runtime: Runtime) -> Principal | None:
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None:
        principal = await runtime.verifier.verify(token)
    else:
        try:
            session = await runtime.sessions.identify(request.cookies)
        except SessionEnded as ended:
            ctx.set_cookies.extend(ended.clear)
            raise
        if session is None:
            return None
        ctx.set_cookies.extend(session.cookies)
        principal = session.principal
    ctx.principal = principal
    return principal
