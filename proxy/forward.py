"""Forwarding an authorized request to its route's upstream, streaming the body both ways.

The shared client must come from `create_upstream_client()`: it never decompresses (bodies and
`Content-Encoding` pass through byte for byte), keeps no cookie jar (one user's upstream cookies
must never reach another user), ignores proxy environment variables, and hands back a refused
WebSocket handshake as `UpgradeRefused` so that its answer reaches the client as sent.

`route.timeout_seconds` bounds connecting and waiting for the response headers; while the client's
request body is still flowing the wait restarts with every chunk, so a long upload is not cut off
while the upstream keeps reading it. The response body has no time limit (streams, long polls) and
is relayed as it arrives: each read returns what the upstream has sent so far, so server-sent
events and chunked streams are never held back to fill a buffer, and nothing (no `Content-Length`,
no compression) is added to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy.config.model import Route
from proxy.errors import NoRoute, UpstreamError, UpstreamTimeout
from proxy.headers import downstream_response_headers, upstream_request_headers
from proxy.keys import RequestContext
from proxy.metrics import Metrics

_log = logging.getLogger("idgate.forward")

_CHUNK_BYTES: Final = 64 * 1024
_SMALL_BODY_BYTES: Final = 64 * 1024
_POOL_LIMIT: Final = 512
_KEEPALIVE_SECONDS: Final = 30.0
#: Per-request deadlines come from the route; the client itself must never cut a body short.
_NO_CLIENT_TIMEOUT: Final = aiohttp.ClientTimeout(
    total=None, connect=None, sock_connect=None, sock_read=None
)
#: aiohttp adds these when absent; an intermediary must not invent them for the client.
_NO_AUTO_HEADERS: Final = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


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
    if response.status != 101 and request.headers.get("Upgrade", "").lower() == "websocket":
        raise UpgradeRefused(response)
    return response


def create_upstream_client() -> aiohttp.ClientSession:
    """The one pooled client for every upstream; open it in `app.cleanup_ctx` and close it there."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=_POOL_LIMIT, keepalive_timeout=_KEEPALIVE_SECONDS),
        timeout=_NO_CLIENT_TIMEOUT,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        middlewares=(_surface_refused_upgrades,),
    )


@lru_cache(maxsize=256)
def _upstream_prefix(upstream: str) -> str:
    """`http://host:port/base/` -> `http://host:port/base`: the request path is appended to it."""
    url = URL(upstream)
    return str(url.origin()) + url.raw_path.rstrip("/")


def upstream_url(upstream: str, ctx: RequestContext) -> URL:
    """Where the request goes: the normalised path, still encoded, sent without re-quoting."""
    query = f"?{ctx.query}" if ctx.query else ""
    return URL(f"{_upstream_prefix(upstream)}{ctx.upstream_path}{query}", encoded=True)


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


class _HeaderDeadline:
    """The wait for response headers, restarted while the request body still flows."""

    __slots__ = ("_scope", "_seconds")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._scope: asyncio.Timeout | None = None

    def restart(self) -> None:
        if self._scope is not None:
            self._scope.reschedule(asyncio.get_running_loop().time() + self._seconds)

    async def body(self, content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
        async for chunk in content.iter_chunked(_CHUNK_BYTES):
            self.restart()
            yield chunk

    async def wait(self, sending: Awaitable[aiohttp.ClientResponse]) -> aiohttp.ClientResponse:
        async with asyncio.timeout(self._seconds) as scope:
            self._scope = scope
            try:
                return await sending
            finally:
                self._scope = None


def headers_for_upstream(
    request: web.Request,
    *,
    ctx: RequestContext,
    route: Route,
    identity_headers: Mapping[str, str],
    session_cookie_name: str,
) -> CIMultiDict[str]:
    """The request headers this request sends to its route's upstream (HTTP or WebSocket)."""
    return upstream_request_headers(
        request.headers,
        pass_authorization=route.pass_access_token,
        session_cookie_name=session_cookie_name,
        peer=request.remote or ctx.client_ip,
        scheme=ctx.scheme,
        host=ctx.host,
        identity_headers=identity_headers,
    )


async def forward(
    request: web.Request,
    *,
    ctx: RequestContext,
    route: Route,
    client: aiohttp.ClientSession,
    identity_headers: Mapping[str, str],
    session_cookie_name: str,
    metrics: Metrics,
) -> web.StreamResponse:
    """Send the request to `route.upstream` and stream its response back.

    Raises UpstreamError (502) when the upstream cannot be reached or answers nonsense, and
    UpstreamTimeout (504) when its response headers do not arrive in time.
    """
    if route.upstream is None:
        raise NoRoute("this route only answers forward-auth checks")
    headers = headers_for_upstream(
        request,
        ctx=ctx,
        route=route,
        identity_headers=identity_headers,
        session_cookie_name=session_cookie_name,
    )
    deadline = _HeaderDeadline(route.timeout_seconds)
    started = time.perf_counter()
    with upstream_errors():
        upstream = await deadline.wait(
            client.request(
                ctx.method,
                upstream_url(route.upstream, ctx),
                headers=headers,
                data=deadline.body(request.content) if request.body_exists else None,
                allow_redirects=False,
                skip_auto_headers=_NO_AUTO_HEADERS,
                timeout=_NO_CLIENT_TIMEOUT,
            )
        )
    metrics.child(metrics.upstream_duration, route.name).observe(time.perf_counter() - started)
    return await relay_response(
        upstream, request, ctx=ctx, route=route, session_cookie_name=session_cookie_name
    )


async def relay_response(
    upstream: aiohttp.ClientResponse,
    request: web.Request,
    *,
    ctx: RequestContext,
    route: Route,
    session_cookie_name: str,
) -> web.StreamResponse:
    """Send the client `upstream`'s status, headers and body (streamed), then release it."""
    async with upstream:
        headers = downstream_response_headers(
            upstream.headers, session_cookie_name=session_cookie_name
        )
        length = upstream.content_length
        if length is not None and length <= _SMALL_BODY_BYTES and request.method != "HEAD":
            # A small body of known length is read whole and sent with the headers in one write:
            # one send instead of three for the commonest answers. It is too short for streaming
            # to matter, and a body cut short becomes a clean 502 rather than a truncated 200.
            try:
                body = await upstream.content.readexactly(length) if length else b""
            except (aiohttp.ClientError, TimeoutError, asyncio.IncompleteReadError) as exc:
                raise UpstreamError("invalid upstream response") from exc
            del headers["Content-Length"]
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers, body=body
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        await response.prepare(request)
        await _relay_body(upstream, response, request, ctx=ctx, route=route)
    return response


async def _relay_body(
    upstream: aiohttp.ClientResponse,
    response: web.StreamResponse,
    request: web.Request,
    *,
    ctx: RequestContext,
    route: Route,
) -> None:
    while True:
        try:
            # At most _CHUNK_BYTES, but whatever has arrived: an event is relayed when it is sent.
            chunk = await upstream.content.read(_CHUNK_BYTES)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The status line is already out, so no error response can follow. Closing the client
            # connection without the final chunk (or short of Content-Length) tells it the body is
            # incomplete. Only the exception type is logged: its text may hold the upstream URL.
            _log.warning(
                "upstream broke off the response body: route=%s request_id=%s error=%s",
                route.name,
                ctx.request_id,
                type(exc).__name__,
            )
            if request.transport is not None:
                request.transport.close()
            return
        if not chunk:
            return
        try:
            await response.write(chunk)
        except ConnectionError:
            return  # the client went away; leaving the block closes the upstream connection
