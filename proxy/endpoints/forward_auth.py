"""`/oauth2/auth`: the decision alone, for nginx `auth_request`, Traefik `forwardAuth` and Caddy
`forward_auth`.

The gateway passes the original request's method and URI in headers (`X-Forwarded-Method`/
`-Uri` from Traefik and Caddy, `X-Original-Method`/`-URI` from nginx) and its host in `Host` or
`X-Forwarded-Host`. accept has already removed all of these unless the gateway is a trusted
proxy, so a client calling this endpoint directly cannot choose what is judged: without them the
target is `GET /` on the request's host. A peer outside `trusted_proxies` that sends them is
refused (403, logged and counted) rather than judged as `GET /`: it is almost always a gateway
missing from `trusted_proxies`, and answering for `/` would open every stricter path behind it.

Answers: 202 with the identity headers when allowed, 401 without valid credentials, 403 when
denied. Never a redirect (nginx would turn it into a 500); the gateway sends browsers to
`/oauth2/sign_in` on 401.

An allow says how long it holds (`Cache-Control: max-age=N`, which nginx's `proxy_cache` honours):
never beyond the token's `exp`, the session's next refresh or `forward_auth.
decision_cache_seconds`; an answer that sets a cookie, and every refusal, is `no-store`. It also
names the normalised path it judged (`X-Idgate-Path`), so a gateway forwards exactly that path
(`idgate render nginx` does), and a gateway may name the routes its location serves
(`X-Idgate-Routes`): a request idgate would match to another route is refused, so the gateway
and idgate never disagree on which route a path is.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from aiohttp import web

from proxy.errors import BadRequest, ForwardAuthRefused, NoRoute
from proxy.forward.identity_headers import identity_headers
from proxy.reasons import Reason
from proxy.stages.authorize import authorize
from proxy.stages.context import RequestContext
from proxy.stages.origin import check_origin
from proxy.stages.pages import NO_STORE
from proxy.stages.paths import normalize_path

_log = logging.getLogger("idgate.forward_auth")

_METHOD_HEADERS: Final = ("X-Forwarded-Method", "X-Original-Method")
_URI_HEADERS: Final = ("X-Forwarded-Uri", "X-Original-URI", "X-Original-URL")
#: Sent by the gateway: the names of the routes its location serves, space-separated.
ROUTES_HEADER: Final = "X-Idgate-Routes"
#: Sent back: the normalised, encoded path idgate judged, for the gateway to forward as it is.
PATH_HEADER: Final = "X-Idgate-Path"
#: Sent by the gateway: the original request's `Upgrade` (gateways do not pass hop-by-hop headers
#: on), so a WebSocket handshake gets the route's Origin check as it does in the proxy.
UPGRADE_HEADER: Final = "X-Original-Upgrade"

#: What a gateway names the original request by (`header_key` form): from an untrusted peer,
#: a refusal.
_ORIGINAL_REQUEST_KEYS: Final = frozenset(
    {"x-forwarded-method", "x-original-method", "x-forwarded-uri", "x-original-uri"}
    | {"x-original-url", "x-forwarded-host"}
)

#: The names nginx's `auth_request_set $user $upstream_http_x_auth_request_user;` reads.
_AUTH_REQUEST_NAMES: Final = {
    "X-Authenticated-User": "X-Auth-Request-User",
    "X-Authenticated-Email": "X-Auth-Request-Email",
    "X-Authenticated-Groups": "X-Auth-Request-Groups",
}


def _agreed(request: web.Request, names: tuple[str, ...]) -> str | None:
    """The one value the gateway sent under any of `names`.

    A gateway sets one family (nginx `X-Original-*`, Traefik and Caddy `X-Forwarded-*`) and passes
    the client's other headers through, so a client could add the other family itself. Two
    different values mean one of them came from the client: refuse rather than guess.
    """
    values = {value for name in names if (value := request.headers.get(name))}
    if len(values) > 1:
        raise ForwardAuthRefused("conflicting original-request headers")
    return values.pop() if values else None


def refuse_untrusted_gateway(ctx: RequestContext) -> None:
    """Raise when a peer outside `trusted_proxies` named an original request.

    Only the header names are logged: an original URI's query may carry a token or a code.
    """
    sent = ctx.untrusted_forwarding & _ORIGINAL_REQUEST_KEYS
    if not sent:
        return
    ctx.runtime.metrics.forward_auth_untrusted_peers.inc()
    _log.warning(
        "forward-auth check from %s refused: it sent %s but is not in trusted_proxies"
        " (add the gateway's address to trusted_proxies)",
        ctx.peer_ip,
        ", ".join(sorted(sent)),
    )
    raise ForwardAuthRefused(
        "original-request headers from a peer outside trusted_proxies",
        reason=Reason.UNTRUSTED_GATEWAY,
    )


async def auth(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    ctx.for_gateway = True
    refuse_untrusted_gateway(ctx)
    method = (_agreed(request, _METHOD_HEADERS) or "GET").upper()
    uri = _agreed(request, _URI_HEADERS) or "/"
    raw_path, _, query = uri.partition("?")
    if raw_path.startswith(("http://", "https://")):
        # X-Original-URL (IIS, some ingresses) carries the absolute URL.
        raw_path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
    try:
        path = normalize_path(raw_path)
    except BadRequest as error:
        raise ForwardAuthRefused("malformed original URI", reason=error.reason) from None
    # The decision log and metrics describe the request that was judged, not this subrequest.
    ctx.method, ctx.path, ctx.upstream_path, ctx.query = method, path.decoded, path.encoded, query
    expected = request.headers.get(ROUTES_HEADER)
    if expected is not None:
        route = ctx.runtime.routes.match(host=ctx.host, path=path.decoded, method=method)
        if route is None or route.name not in expected.split():
            raise ForwardAuthRefused(
                "the gateway's location serves another route", reason=Reason.NO_ROUTE
            )
    try:
        decision = await authorize(request, ctx)
    except NoRoute as error:
        raise ForwardAuthRefused("no route for the original request", reason=error.reason) from None
    if request.headers.get(UPGRADE_HEADER, "").lower() == "websocket":
        check_origin(request, ctx, decision.route)
    lifetime = decision_lifetime(ctx, now=time.time())
    headers = {
        "Cache-Control": f"max-age={lifetime}" if lifetime > 0 else NO_STORE,
        PATH_HEADER: ctx.upstream_path,
    }
    principal = ctx.principal
    if principal is not None:
        identity = identity_headers(
            principal,
            decision.route,
            ctx.runtime.signer,
            session_access_token=ctx.session_access_token,
        )
        headers |= identity
        headers |= {
            alias: identity[name] for name, alias in _AUTH_REQUEST_NAMES.items() if name in identity
        }
    return web.Response(status=202, headers=headers)


def decision_lifetime(ctx: RequestContext, *, now: float) -> int:
    """Whole seconds a gateway may reuse this allow; 0: not at all.

    Never beyond the configured ceiling, the identity's `expires_at` (token `exp`, session end),
    the session's next refresh, when the provider must vouch for the user again, or the moment
    the sign-in grows older than the route's `step_up.max_age`. An answer
    that sets a cookie is never reused: replayed to another request it would hand one browser's
    session to another.
    """
    ceiling = ctx.runtime.settings.forward_auth.decision_cache_seconds
    if ceiling <= 0 or ctx.set_cookies:
        return 0
    holds = float(ceiling)
    if ctx.principal is not None:
        holds = min(holds, ctx.principal.expires_at - now)
    if ctx.verify_again_at is not None:
        holds = min(holds, ctx.verify_again_at - now)
    step_up = None if ctx.route is None else ctx.route.step_up
    if step_up is not None and step_up.max_age_seconds is not None and ctx.principal is not None:
        auth_time = ctx.principal.sign_in.auth_time
        holds = 0.0 if auth_time is None else min(holds, auth_time + step_up.max_age_seconds - now)
    return max(0, int(holds))
