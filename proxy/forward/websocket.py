"""WebSocket upgrades: the route's Origin check, the upstream handshake, then the tunnel.

A handshake reaches this module already authorized like any request (SPEC: "A WebSocket upgrade is
authorized like any request, checks `Origin` against the route, and becomes a tunnel only after the
upstream answers 101"). Then:

- Origin: a browser sends the user's cookies on a cross-site WebSocket handshake too, so a page of
  any origin could otherwise open a socket as the user (Cross-Site WebSocket Hijacking). A
  handshake with `Origin` must come from the address it was sent to, or from one of the route's
  `allowed_origins`; one without (not a browser) is judged by its credentials alone.
- The upstream gets the handshake with the identity headers and assertion, like any request.
  Only its 101 makes idgate answer the client with 101. Any other answer is relayed as an ordinary
  response, and the client's connection stays plain HTTP: aiohttp parses its next request, which
  is authorized afresh.
- The tunnel (proxy/forward/tunnel.py) lasts while the identity does: until its `expires_at`, and
  for a
  session, while the session still verifies every `refresh_interval`; and until idgate stops
  (proxy/drain.py), which closes it with 1001.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

import aiohttp
from aiohttp import WSCloseCode, web
from multidict import CIMultiDict, MultiMapping

from proxy.config.model import Route
from proxy.drain import DRAIN_KEY
from proxy.errors import (
    BadRequest,
    UpstreamError,
    UpstreamIdentityMismatch,
    UpstreamTimeout,
)
from proxy.forward.headers import websocket_subprotocols, without_websocket_handshake
from proxy.forward.http import (
    UPSTREAM_POOL_KEY,
    headers_for_upstream,
    relay_response,
    upstream_host,
    upstream_url,
)
from proxy.forward.identity_connector import IdentityCheckingConnector, connector_of
from proxy.forward.tunnel import run_tunnel
from proxy.stages.context import RequestContext
from proxy.stages.origin import check_origin
from proxy.stages.watch import identity_watch
from proxy.upstream.tls import server_name

_log = logging.getLogger("idgate.websocket")

#: The largest message relayed (aiohttp's default); a larger one closes its sender with 1009.
_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
#: Per-handshake deadlines come from the route; the client itself must never cut a tunnel short.
_NO_CLIENT_TIMEOUT: Final = aiohttp.ClientTimeout(
    total=None, connect=None, sock_connect=None, sock_read=None
)


class UpgradeRefused(Exception):
    """The upstream answered a WebSocket handshake with something other than 101.

    `response` has its headers read and its body unread: whoever catches this relays and releases
    it.
    """

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        super().__init__(f"upstream refused the upgrade with {response.status}")
        self.response = response


async def _surface_refused_upgrades(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    # `ws_connect` follows redirects and discards any other refusal's body, but a refused upgrade
    # is an ordinary answer that must reach the client as the upstream sent it.
    response = await handler(request)
    if response.status != 101:
        raise UpgradeRefused(response)
    return response


def create_websocket_client() -> aiohttp.ClientSession:
    """The client for upstream WebSockets; open it in `app.cleanup_ctx`, close it there.

    Every handshake goes on a connection of its own that is never pooled (`force_close`): one the
    upstream upgraded becomes that tunnel's, and one it refused is closed once its answer has been
    relayed. aiohttp's client keeps parsing what arrives on an idle pooled connection and hands it
    to the next request, so an upstream's second, unasked-for answer after a refusal would reach
    the next user's handshake; idgate's own HTTP client closes a connection on such bytes
    (proxy/upstream), and here no connection lives long enough to carry them.

    Like idgate's HTTP client it never decompresses, keeps no cookie jar and ignores proxy
    environment variables.
    """
    return aiohttp.ClientSession(
        connector=IdentityCheckingConnector(limit=0, force_close=True),
        timeout=_NO_CLIENT_TIMEOUT,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        middlewares=(_surface_refused_upgrades,),
    )


WEBSOCKET_CLIENT_KEY = web.AppKey[aiohttp.ClientSession]("websocket_client")


@contextmanager
def upstream_errors() -> Iterator[None]:
    """aiohttp's errors while reaching an upstream, as the 502 or 504 they mean to the client."""
    try:
        yield
    except TimeoutError as exc:  # before ClientError: aiohttp's timeouts are both
        raise UpstreamTimeout("upstream timed out") from exc
    except aiohttp.ClientConnectionError as exc:
        raise UpstreamError("upstream unavailable") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError("invalid upstream response") from exc


class _RefusalAnswer:
    """A refused handshake's response as relay_response reads it."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def reason(self) -> str:
        return self._response.reason or ""

    @property
    def headers(self) -> MultiMapping[str]:
        return self._response.headers

    @property
    def content_length(self) -> int | None:
        return self._response.content_length

    async def read(self, limit: int) -> bytes:
        with upstream_errors():
            return await self._response.content.read(limit)

    async def read_exactly(self, length: int) -> bytes:
        try:
            with upstream_errors():
                return await self._response.content.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise UpstreamError("invalid upstream response") from exc

    def release(self) -> None:
        self._response.release()


async def open_websocket(
    request: web.Request, ctx: RequestContext, route: Route, identity_headers: Mapping[str, str]
) -> web.StreamResponse:
    """Answer an authorized WebSocket handshake for `route`: relay the upstream's refusal, or
    tunnel."""
    check_origin(request, ctx, route)
    offered = websocket_subprotocols(request.headers)
    # Checked before the upstream hears of it; whichever subprotocol is offered, the upstream picks.
    if not web.WebSocketResponse(protocols=offered).can_prepare(request).ok:
        raise BadRequest("malformed WebSocket handshake")
    headers = headers_for_upstream(request, ctx, route, identity_headers)
    metrics = ctx.runtime.metrics
    client = request.app[WEBSOCKET_CLIENT_KEY]
    started = time.perf_counter()
    try:
        upstream = await _connect(
            client, route, ctx, headers=headers, protocols=offered, tls=await _tls(request, route)
        )
    except UpstreamIdentityMismatch:
        metrics.upstream_identity_mismatches.labels(route=route.name).inc()
        raise
    except UpgradeRefused as refused:
        metrics.child(metrics.upstream_duration, route.name).observe(time.perf_counter() - started)
        return await relay_response(_RefusalAnswer(refused.response), request, ctx, route)
    metrics.child(metrics.upstream_duration, route.name).observe(time.perf_counter() - started)
    try:
        downstream = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            autoclose=False,
            autoping=False,
            compress=False,
            timeout=route.timeout_seconds,
            max_msg_size=_MAX_MESSAGE_BYTES,
        )
        await downstream.prepare(request)
        with request.app[DRAIN_KEY].tunnel(request.protocol) as going_away:
            ended = await run_tunnel(
                downstream, upstream, watch=identity_watch(request, ctx), going_away=going_away
            )
    finally:
        # Already closed when the tunnel ran its course; not when the client vanished before
        # the 101 or the server is stopping (the handler is cancelled): then it goes away.
        await upstream.close(code=WSCloseCode.GOING_AWAY)
    if ended is not None:
        _log.info("websocket closed: %s: route=%s request_id=%s", ended, route.name, ctx.request_id)
    return downstream


async def _tls(request: web.Request, route: Route) -> ssl.SSLContext | None:
    """The route's current upstream client context (as for HTTP), for an `https` upstream."""
    if route.upstream is None or not route.upstream.startswith("https:"):
        return None
    return await request.app[UPSTREAM_POOL_KEY].tls_contexts.context(route.upstream_tls)


async def _connect(
    client: aiohttp.ClientSession,
    route: Route,
    ctx: RequestContext,
    *,
    headers: CIMultiDict[str],
    protocols: tuple[str, ...],
    tls: ssl.SSLContext | None,
) -> aiohttp.ClientWebSocketResponse:
    """The upstream's WebSocket; raises UpgradeRefused when it answers anything but 101.

    Both ends are left to idgate's relay: no automatic pongs or close replies, no pings of its own.
    """
    assert route.upstream is not None  # the caller does not forward decision-only routes
    # WSServerHandshakeError, a ClientError (502), is a 101 that does not complete the handshake.
    spiffe_id = route.upstream_tls.spiffe_id if route.upstream_tls is not None else None
    if tls is not None and spiffe_id is not None:
        connector = connector_of(client)
        if connector is None:
            raise UpstreamError("this client cannot check the upstream's SPIFFE ID")
        connector.expect(tls, spiffe_id)  # checked after the TLS handshake, before the request
    with upstream_errors():
        async with asyncio.timeout(route.timeout_seconds):
            url = upstream_url(route.upstream, ctx)
            sent = without_websocket_handshake(headers)
            if route.preserve_host:
                sent["Host"] = upstream_host(route, ctx, url.host_port_subcomponent or "")
            upstream = await client.ws_connect(
                url,
                headers=sent,
                protocols=protocols,
                autoclose=False,
                autoping=False,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=route.timeout_seconds),
                max_msg_size=_MAX_MESSAGE_BYTES,
                ssl=True if tls is None else tls,
                server_hostname=(
                    None if tls is None else server_name(route.upstream_tls, url.raw_host or "")
                ),
            )
    return upstream
