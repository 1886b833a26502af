"""The one per-request context: created by accept, read and filled in by every later stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from proxy.runtime import Runtime
from proxy.sessions.store import CookieChange

if TYPE_CHECKING:
    from proxy.config.model import Route
    from proxy.identity.principal import Principal
    from proxy.observability.tracing import RequestTrace
    from proxy.policy.decision import Decision
    from proxy.reasons import TokenFailure


@dataclass(slots=True, kw_only=True)
class RequestContext:
    """What idgate knows about one request; created by accept, filled in by later stages."""

    runtime: Runtime
    """Taken once when the request arrived: a reload never mixes two configurations in it."""
    request_id: str
    peer_ip: str
    """The address of the connection's other end ("unknown" when the socket does not say)."""
    from_trusted_proxy: bool
    """The peer is one of `trusted_proxies`: its forwarding headers were believed."""
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
    untrusted_forwarding: frozenset[str] = frozenset()
    """Forwarding headers (by `header_key`) an untrusted peer sent and accept dropped."""
    own_endpoint: bool = False
    """The path is one of idgate's own endpoints (metrics label `_idgate`), not a route."""
    for_gateway: bool = False
    """A gateway's forward-auth subrequest (`/oauth2/auth`): it must answer 2xx, 401 or 403."""
    route: Route | None = None
    principal: Principal | None = None
    verify_again_at: float | None = None
    """Unix time of the session's next refresh, when a session identified the caller: a
    gateway's cached decision must not outlive it."""
    session_access_token: str | None = None
    """The provider's access token of the session that identified the caller (the refreshed one
    after a refresh); None for any other credential. Never logged."""
    decision: Decision | None = None
    token_failure: TokenFailure | None = None
    token_issuer: str | None = None
    """Name of the issuer a refused token was matched to, when it got that far."""
    set_cookies: list[CookieChange] = field(default_factory=list)
    """Session cookie changes to send with whatever response this request gets."""
    trace: RequestTrace | None = None
    """The request's spans, when tracing is configured (proxy/observability/tracing.py)."""


CONTEXT_KEY = web.RequestKey[RequestContext]("context")


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusedRequest:
    """What is logged of a request refused before it had a context (accept raised): the peer,
    not a forwarded client, since no forwarding header was vetted; the path as sent, without
    its query."""

    request_id: str
    peer_ip: str
    method: str
    path: str
