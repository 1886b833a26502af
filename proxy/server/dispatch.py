"""The single terminal handler: idgate's own endpoints by exact normalised path, else the proxy.

aiohttp's router sees one catch-all route; the real dispatch happens here, on the path accept
normalised, so `/oauth2/../admin` can never be one thing to the router and another to policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from proxy.config.model import Route
from proxy.endpoints import callback, ext_authz, forward_auth, info, login, logout
from proxy.endpoints.own_paths import Endpoint, answers_robots, own_endpoint
from proxy.endpoints.resource_metadata import published_at, serve_metadata
from proxy.errors import IdgateError, MethodNotAllowed, NoRoute
from proxy.forward.headers import is_websocket_upgrade
from proxy.forward.http import forward
from proxy.forward.identity_headers import identity_headers
from proxy.forward.websocket import open_websocket
from proxy.stages.authorize import authorize
from proxy.stages.context import RequestContext

Handler = Callable[[web.Request, RequestContext], Awaitable[web.StreamResponse]]


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
    Endpoint.SIGNED_OUT: (logout.signed_out, _READ),
    Endpoint.ROBOTS: (info.robots, _READ),
    # Envoy checks with the original request's method.
    Endpoint.EXT_AUTHZ: (ext_authz.check, _ANY),
}


async def dispatch(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    endpoint = own_endpoint(request.raw_path, ctx.path, ctx.runtime.settings.prefix)
    if endpoint is Endpoint.ROBOTS and not answers_robots(
        ctx.runtime.routes.match(host=ctx.host, path=ctx.path, method=ctx.method)
    ):
        endpoint = None
    if endpoint is not None:
        ctx.own_endpoint = True
        handler, methods = _HANDLERS[endpoint]
        if request.method not in methods:
            raise MethodNotAllowed("method not allowed")
        return await handler(request, ctx)
    published = published_at(ctx.runtime.settings.routes, host=ctx.host, path=ctx.path)
    if published is not None:
        return await serve_metadata(request, ctx, published)
    return await proxy_request(request, ctx)


async def proxy_request(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    trace = ctx.trace
    if trace is None:
        decision = await authorize(request, ctx)
    else:
        with trace.stage("authorize"):
            decision = await authorize(request, ctx)
    if not decision.lets_through or ctx.decision is not decision:
        # Unreachable by construction; counted so an alert fires if a change ever makes it not so.
        ctx.runtime.metrics.forwarded_without_decision.inc()
        raise IdgateError("refusing to forward without an allow decision")
    route = decision.route
    if route.upstream is None:
        # Decision-only routes serve /oauth2/auth; there is nothing behind them to forward to.
        raise NoRoute("this route only answers forward-auth checks")
    principal = ctx.principal
    headers = (
        identity_headers(
            principal, route, ctx.runtime.signer, session_access_token=ctx.session_access_token
        )
        if principal is not None
        else {}
    )
    headers["X-Request-Id"] = ctx.request_id
    if trace is None:
        return await _send_upstream(request, ctx, route, headers)
    with trace.forwarding(headers):
        return await _send_upstream(request, ctx, route, headers)


async def _send_upstream(
    request: web.Request, ctx: RequestContext, route: Route, headers: dict[str, str]
) -> web.StreamResponse:
    if is_websocket_upgrade(request.method, request.headers):
        return await open_websocket(request, ctx, route, headers)
    return await forward(request, ctx, route, headers)
