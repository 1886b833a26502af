"""Forwarding an authorized request to its route's upstream, streaming the body both ways.

Requests go through idgate's own pooled HTTP/1.1 client (proxy/upstream), which never
decompresses (bodies and `Content-Encoding` pass through byte for byte), keeps no cookies (one
user's upstream cookies must never reach another user) and ignores proxy environment variables.

`route.timeout_seconds` bounds connecting and waiting for the response headers; while the client's
request body is still flowing the wait restarts with every chunk, so a long upload is not cut off
while the upstream keeps reading it. A client body that sends no byte for
`server.body_idle_timeout` gets 408. The response body has no overall time limit (streams, long
polls), only `upstream.body_idle_timeout` between bytes, and is relayed as it arrives: each read
returns what the upstream has sent so far, so server-sent events and chunked streams are never
held back to fill a buffer, and nothing (no `Content-Length`, no compression) is added to them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import Final, Protocol

from aiohttp import web
from multidict import CIMultiDict, MultiMapping
from yarl import URL

from proxy.config.model import Route, UpstreamTLS
from proxy.errors import NoRoute, RequestTimeout, UpstreamError, UpstreamIdentityMismatch
from proxy.forward.headers import (
    claim_header_keys,
    downstream_response_headers,
    upstream_request_headers,
)
from proxy.stages.context import RequestContext
from proxy.stages.expect import continue_if_expected
from proxy.upstream import Origin, RequestBody, UpstreamPool, request_head

_log = logging.getLogger("idgate.forward")

_CHUNK_BYTES: Final = 64 * 1024
_SMALL_BODY_BYTES: Final = 64 * 1024
#: RFC 9110 9.2.2: "A user agent [...] MAY automatically retry a request with an idempotent method".
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class UpstreamAnswer(Protocol):
    """An upstream's response as relay_response needs it (HTTP answers, refused upgrades)."""

    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def headers(self) -> MultiMapping[str]: ...
    @property
    def content_length(self) -> int | None: ...

    async def read(self, limit: int) -> bytes:
        """What has arrived, at most `limit` bytes; b"" at the end; UpstreamError if cut off."""
        ...

    async def read_exactly(self, length: int) -> bytes: ...

    def release(self) -> None: ...


class _Upstream:
    """A route's `upstream` URL taken apart once: where to connect, what to prefix, `Host`."""

    __slots__ = ("host", "origin", "prefix")

    def __init__(self, upstream: str, tls: UpstreamTLS | None) -> None:
        url = URL(upstream)
        if url.scheme not in ("http", "https") or url.raw_host is None or url.port is None:
            raise ValueError(f"not an http(s) URL: {upstream!r}")
        self.origin = Origin(url.scheme, url.raw_host, url.port, tls)
        self.host = url.host_port_subcomponent or url.raw_host
        #: `http://host:port/base/` -> `/base`: the request path is appended to it.
        self.prefix = url.raw_path.rstrip("/")


UPSTREAM_POOL_KEY = web.AppKey[UpstreamPool]("upstream_pool")


@lru_cache(maxsize=256)
def _upstream(upstream: str, tls: UpstreamTLS | None = None) -> _Upstream:
    return _Upstream(upstream, tls)


def upstream_url(upstream: str, ctx: RequestContext) -> URL:
    """Where the request goes: the normalised path, still encoded, sent without re-quoting."""
    query = f"?{ctx.query}" if ctx.query else ""
    target = _upstream(upstream)
    return URL(
        f"{target.origin.scheme}://{target.host}{target.prefix}{ctx.upstream_path}{query}",
        encoded=True,
    )


def _request_target(target: _Upstream, ctx: RequestContext) -> str:
    path = f"{target.prefix}{ctx.upstream_path}"
    return f"{path}?{ctx.query}" if ctx.query else path


def headers_for_upstream(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    identity_headers: Mapping[str, str],
) -> CIMultiDict[str]:
    """The request headers this request sends to its route's upstream (HTTP or WebSocket)."""
    return upstream_request_headers(
        request.headers,
        pass_authorization=route.pass_access_token,
        session_cookie_name=ctx.runtime.settings.session.cookie_name,
        peer=request.remote or ctx.client_ip,
        scheme=ctx.scheme,
        host=ctx.host,
        identity_headers=identity_headers,
        claim_header_keys=claim_header_keys(route.claim_headers),
    )


def upstream_host(route: Route, ctx: RequestContext, own: str) -> str:
    """The `Host` the upstream receives: its own, or with `preserve_host` the client's."""
    return ctx.authority if route.preserve_host and ctx.authority else own


async def forward(
    request: web.Request, ctx: RequestContext, route: Route, identity_headers: Mapping[str, str]
) -> web.StreamResponse:
    """Send the request to `route.upstream` and stream its response back.

    Raises UpstreamError (502) when the upstream cannot be reached or answers nonsense, and
    UpstreamTimeout (504) when its response headers do not arrive in time.
    """
    if route.upstream is None:
        raise NoRoute("this route only answers forward-auth checks")
    target = _upstream(route.upstream, route.upstream_tls)
    headers = headers_for_upstream(request, ctx, route, identity_headers)
    body = None
    if request.body_exists:
        # The request is allowed: only now is a client that waits for it invited to send the body.
        await continue_if_expected(request)
        # A body of unknown length (the client sent it chunked) goes on chunked.
        chunked = "Content-Length" not in headers
        idle_seconds = ctx.runtime.settings.server.body_idle_timeout_seconds
        body = RequestBody(_client_body(request, idle_seconds), chunked=chunked)
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
    host = upstream_host(route, ctx, target.host)
    head = request_head(ctx.method, _request_target(target, ctx), host, headers.items())
    started = time.perf_counter()
    metrics = ctx.runtime.metrics
    try:
        upstream = await request.app[UPSTREAM_POOL_KEY].exchange(
            target.origin,
            head,
            body,
            timeout_seconds=route.timeout_seconds,
            limits=ctx.runtime.settings.upstream,
            head_only=ctx.method == "HEAD",
            replayable=body is None and ctx.method in _IDEMPOTENT,
        )
    except UpstreamIdentityMismatch:
        metrics.upstream_identity_mismatches.labels(route=route.name).inc()
        raise
    metrics.child(metrics.upstream_duration, route.name).observe(time.perf_counter() - started)
    return await relay_response(upstream, request, ctx, route)


async def _client_body(request: web.Request, idle_seconds: float) -> AsyncIterator[bytes]:
    """The client's body as it arrives; RequestTimeout (408) when no byte comes for
    `idle_seconds`, as nginx's `client_body_timeout` (which also answers 408)."""
    content = request.content
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                chunk = await content.read(_CHUNK_BYTES)
        except TimeoutError:
            raise RequestTimeout("request body stalled") from None
        if not chunk:
            return
        yield chunk


async def relay_response(
    upstream: UpstreamAnswer, request: web.Request, ctx: RequestContext, route: Route
) -> web.StreamResponse:
    """Send the client `upstream`'s status, headers and body (streamed), then release it."""
    try:
        headers = downstream_response_headers(
            upstream.headers, session_cookie_name=ctx.runtime.settings.session.cookie_name
        )
        length = upstream.content_length
        if length is not None and length <= _SMALL_BODY_BYTES and request.method != "HEAD":
            # A small body of known length is read whole and sent with the headers in one write:
            # one send instead of three for the commonest answers. It is too short for streaming
            # to matter, and a body cut short becomes a clean 502 rather than a truncated 200.
            body = await upstream.read_exactly(length) if length else b""
            del headers["Content-Length"]
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers, body=body
            )
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        await response.prepare(request)
        await _relay_body(upstream, response, request, ctx, route)
    finally:
        upstream.release()
    return response


async def _relay_body(
    upstream: UpstreamAnswer,
    response: web.StreamResponse,
    request: web.Request,
    ctx: RequestContext,
    route: Route,
) -> None:
    while True:
        try:
            # At most _CHUNK_BYTES, but whatever has arrived: an event is relayed when it is sent.
            chunk = await upstream.read(_CHUNK_BYTES)
        except UpstreamError as exc:
            # The status line is already out, so no error response can follow. Closing the client
            # connection without the final chunk (or short of Content-Length) tells it the body is
            # incomplete. Only the exception type is logged: its text may hold the upstream URL.
            # An UpstreamTimeout here is upstream.body_idle_timeout.
            _log.warning(
                "upstream broke off the response body: route=%s request_id=%s error=%s",
                route.name,
                ctx.request_id,
                type(exc.__cause__ or exc).__name__,
            )
            if request.transport is not None:
                request.transport.close()
            return
        if not chunk:
            return
        try:
            await response.write(chunk)
        except ConnectionError:
            return  # the client went away; releasing unread closes the upstream connection
