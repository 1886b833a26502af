"""The single terminal handler: idgate's own endpoints by exact normalised path, else the proxy.

aiohttp's router sees one catch-all route; the real dispatch happens here, on the path accept
normalised, so `/oauth2/../admin` can never be one thing to the router and another to policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from proxy.endpoints import callback, forward_auth, info, login, logout
from proxy.endpoints.own_paths import Endpoint, endpoint_paths
from proxy.errors import IdgateError, MethodNotAllowed, NoRoute
from proxy.forward.headers import is_websocket_upgrade
from proxy.forward.http import forward
from proxy.forward.identity_headers import identity_headers
from proxy.forward.websocket import open_websocket
from proxy.stages.authorize import authorize
from proxy.stages.context import (
    CONTEXT_KEY,
    METRICS_KEY,
    RUNTIME_KEY,
    UPSTREAM_POOL_KEY,
    WEBSOCKET_CLIENT_KEY,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_READ: Final = frozenset({"GET", "HEAD"})
_READ_OR_POST: Final = _READ | {"POST"}
_ANY: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Each endpoint's handler and the methods it serves (others: 405).
_HANDLERS: Final[dict[Endpoint, tuple[Handler, frozenset[str]]]] = {
    Endpoint.HEALTHZ: (info.healthz, _READ),
    Endpoint.READYZ: (info.readyz, _READ),
    Endpoint.JWKS: (info.jwks, _READ),
    Endpoint.USERINFO: (info.userinfo, _READ),
    Endpoint.START: (login.start, _READ),
    Endpoint.SIGN_IN: (login.start, _READ),
    Endpoint.CALLBACK: (callback.callback, _READ),
    Endpoint.SIGN_OUT: (logout.sign_out, _READ_OR_POST),
    Endpoint.BACKCHANNEL_LOGOUT: (logout.backchannel_logout, frozenset({"POST"})),
    # Gateways send their subrequest with the original method (Traefik, Caddy) or GET (nginx).
    Endpoint.AUTH: (forward_auth.auth, _ANY),
}


async def dispatch(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT_KEY]
    runtime = request.app[RUNTIME_KEY].current
    endpoint = endpoint_paths(runtime.settings.prefix).get(ctx.path)
    if endpoint is not None:
        ctx.own_endpoint = True
        handler, methods = _HANDLERS[endpoint]
        if request.method not in methods:
            raise MethodNotAllowed("method not allowed")
        return await handler(request)
    return await proxy_request(request)


async def proxy_request(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT_KEY]
    runtime = request.app[RUNTIME_KEY].current
    decision = await authorize(
        request, ctx, runtime, method=ctx.method, host=ctx.host, path=ctx.path
    )
    metrics = request.app[METRICS_KEY]
    if not decision.lets_through or ctx.decision is not decision:
        # Unreachable by construction; counted so an alert fires if a change ever makes it not so.
        metrics.forwarded_without_decision.inc()
        raise IdgateError("refusing to forward without an allow decision")
    route = decision.route
    if route.upstream is None:
        # Decision-only routes serve /oauth2/auth; there is nothing behind them to forward to.
        raise NoRoute("this route only answers forward-auth checks")
    principal = ctx.principal
    headers = identity_headers(principal, route, runtime.signer) if principal is not None else {}
    headers["X-Request-Id"] = ctx.request_id
    if is_websocket_upgrade(request.method, request.headers):
        return await open_websocket(
            request,
            ctx=ctx,
            route=route,
            client=request.app[WEBSOCKET_CLIENT_KEY],
            identity_headers=headers,
            runtime=runtime,
            metrics=metrics,
        )
    return await forward(
        request,
        ctx=ctx,
        route=route,
        pool=request.app[UPSTREAM_POOL_KEY],
        identity_headers=headers,
        session_cookie_name=runtime.settings.session.cookie_name,
        metrics=metrics,
    )
