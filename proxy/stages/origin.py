"""The Origin check of WebSocket handshakes, for the proxy and for forward-auth alike.

A browser sends the user's cookies on a cross-site WebSocket handshake too, so a page of any
origin could otherwise open a socket as the user (Cross-Site WebSocket Hijacking). A handshake
with `Origin` must come from the address it was sent to, or from one of the route's
`allowed_origins`; one without (not a browser) is judged by its credentials alone.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from proxy.config.model import Route
from proxy.errors import OriginRefused
from proxy.policy.decision import Decision, Outcome
from proxy.stages.context import RequestContext

_DEFAULT_PORTS: Final = {"http": ":80", "https": ":443"}


def _comparable(origin: str) -> str:
    """`HTTPS://Tools.Example.com:443` -> `https://tools.example.com`."""
    origin = origin.strip().lower()
    scheme = origin.partition("://")[0]
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is not None and origin.endswith(default_port):
        return origin[: -len(default_port)]
    return origin


def origin_allowed(origin: str, *, own: str, allowed: frozenset[str]) -> bool:
    """Whether a handshake sent with `Origin: origin` to the address `own` may open a socket."""
    candidate = _comparable(origin)
    # RFC 6454 7.1: a browser sends "null" for an opaque origin (sandboxed frame, file, data URL),
    # which names no one and could be any page.
    if candidate == "null":
        return False
    return candidate == _comparable(own) or candidate in {_comparable(o) for o in allowed}


def check_origin(request: web.Request, ctx: RequestContext, route: Route) -> None:
    """Raise OriginRefused (403) when the handshake's `Origin` may not open a socket on `route`;
    the refusal is the decision the log and metrics show, though the policy allowed the user."""
    origin = request.headers.get("Origin")
    if origin is None or origin_allowed(
        origin, own=f"{ctx.scheme}://{ctx.authority}", allowed=route.allowed_origins
    ):
        return
    ctx.decision = Decision(
        outcome=Outcome.DENY, reason=OriginRefused.reason, route=route, matched="origin"
    )
    raise OriginRefused("this origin may not open a WebSocket here")
