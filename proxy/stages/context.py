"""Typed keys for app and request state, and the one per-request context every stage writes to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import ClientSession, web

from proxy.observability.metrics import Metrics
from proxy.runtime import RuntimeHolder
from proxy.sessions.store import CookieChange
from proxy.upstream import UpstreamPool

if TYPE_CHECKING:
    from proxy.config.model import Route
    from proxy.errors import TokenFailure
    from proxy.identity.principal import Principal
    from proxy.policy.decision import Decision


@dataclass(slots=True, kw_only=True)
class RequestContext:
    """What idgate knows about one request; created by accept, filled in by later stages."""

    request_id: str
    started: float
    """`time.perf_counter()` when the request reached idgate."""
    client_ip: str
    """The peer, or the client named by a trusted proxy's `X-Forwarded-For`."""
    scheme: str
    host: str
    """Lower case, port removed."""
    method: str
    path: str
    """Normalised and percent-decoded: what routes and policies match."""
    upstream_path: str
    """The same normalised path, re-encoded: what the upstream receives."""
    query: str
    """Raw query string, never matched against policy, forwarded unchanged."""
    authority: str
    """Host and port as the client addressed them (`Host`, or a trusted `X-Forwarded-Host`)."""
    own_endpoint: bool = False
    """The path is one of idgate's own endpoints (metrics label `_idgate`), not a route."""
    route: Route | None = None
    principal: Principal | None = None
    decision: Decision | None = None
    token_failure: TokenFailure | None = None
    set_cookies: list[CookieChange] = field(default_factory=list)
    """Session cookie changes to send with whatever response this request gets."""


RUNTIME_KEY = web.AppKey[RuntimeHolder]("runtime")
METRICS_KEY = web.AppKey[Metrics]("metrics")
UPSTREAM_POOL_KEY = web.AppKey[UpstreamPool]("upstream_pool")
WEBSOCKET_CLIENT_KEY = web.AppKey[ClientSession]("websocket_client")
PROVIDER_CLIENT_KEY = web.AppKey[ClientSession]("provider_client")
CONTEXT_KEY = web.RequestKey[RequestContext]("context")
