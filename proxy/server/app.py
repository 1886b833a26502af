"""build_app: the aiohttp application for one Settings: middleware order, resources, limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, hdrs, web
from prometheus_client import CollectorRegistry

from proxy.certfiles.watch import DEFAULT_POLL_SECONDS, CertificateWatcher
from proxy.config.model import Settings
from proxy.drain import DRAIN_KEY, Drain
from proxy.forward.http import UPSTREAM_POOL_KEY
from proxy.forward.websocket import WEBSOCKET_CLIENT_KEY, create_websocket_client
from proxy.observability.http_log import http_logger
from proxy.observability.metrics import Metrics
from proxy.runtime import RUNTIME_KEY, Runtime, RuntimeHolder, build_runtime, retire_runtime
from proxy.server.connections import CONNECTION_GUARD_KEY, ConnectionGuard
from proxy.server.dispatch import dispatch
from proxy.server.header_limits import MAX_FIELD_BYTES
from proxy.server.pipelining import stop_parsing_after_close
from proxy.server.server_name import name_the_server
from proxy.stages.accept import accept
from proxy.stages.context import CONTEXT_KEY
from proxy.stages.expect import close_unless_body_read, defer_continue
from proxy.stages.observe import observe
from proxy.upstream import UpstreamPool, UpstreamTLSContexts

METRICS_KEY = web.AppKey[Metrics]("metrics")
#: aiohttp's default `lingering_time`.
_LINGERING_SECONDS: Final = 10.0
PROVIDER_CLIENT_KEY = web.AppKey[ClientSession]("provider_client")
#: Polls every certificate file idgate uses (the listener's, the upstreams') for rotation.
CERTIFICATE_WATCHER_KEY = web.AppKey[CertificateWatcher]("certificate_watcher")

#: Bounds on what a client may send before any token parsing (SPEC: "Request line, header and
#: cookie sizes are bounded"). aiohttp answers a breach with 400 before a handler runs; the
#: field bound sits above the token bound (16 KiB) so an oversize token normally gets idgate's
#: own clean 401 rather than the parser's refusal, which quotes the start of the header.
#: `auto_decompress=False`: a proxy passes request bodies on as sent.
SERVER_LIMITS: Final = {
    "max_line_size": 8190,
    "max_field_size": MAX_FIELD_BYTES,
    "max_headers": 100,
    "auto_decompress": False,
    "logger": http_logger(),
}


def build_app(settings: Settings, *, registry: CollectorRegistry | None = None) -> web.Application:
    """The proxy application; its runtime is built (and provider keys first fetched) at startup."""
    stop_parsing_after_close()
    name_the_server()
    server = settings.server
    handler_args = {
        **SERVER_LIMITS,
        # aiohttp's keep-alive timer: the next request head must be complete this long after a
        # response (it is armed at connection open too, behind the guard's head deadline).
        "keepalive_timeout": server.keepalive_timeout_seconds,
        # After an early answer (a 401 or 408 to an upload) aiohttp reads and drops the rest of
        # the body for up to this long, so the client sees the answer rather than a reset; a
        # body that has gone quiet is not worth waiting for past its own idle timeout.
        "lingering_time": min(_LINGERING_SECONDS, server.body_idle_timeout_seconds),
    }
    app = web.Application(handler_args=handler_args)
    app[METRICS_KEY] = Metrics(registry if registry is not None else CollectorRegistry())
    guard = app[CONNECTION_GUARD_KEY] = ConnectionGuard(settings.server, app[METRICS_KEY])
    drain = app[DRAIN_KEY] = Drain()
    app[CERTIFICATE_WATCHER_KEY] = CertificateWatcher(
        app[METRICS_KEY],
        poll_seconds=DEFAULT_POLL_SECONDS
        if settings.tls is None
        else settings.tls.poll_interval_seconds,
    )
    app.router.add_route("*", "/{tail:.*}", _handler(drain, guard), expect_handler=defer_continue)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        provider_client = ClientSession(
            timeout=ClientTimeout(total=settings.oidc.http_timeout_seconds),
            cookie_jar=DummyCookieJar(),
            trust_env=False,
        )
        watcher = app[CERTIFICATE_WATCHER_KEY]
        upstream_pool = UpstreamPool(tls_contexts=UpstreamTLSContexts(watcher))
        websocket_client = create_websocket_client()
        app[PROVIDER_CLIENT_KEY] = provider_client
        app[UPSTREAM_POOL_KEY] = upstream_pool
        app[WEBSOCKET_CLIENT_KEY] = websocket_client
        runtime = await build_runtime(settings, http=provider_client, metrics=app[METRICS_KEY])
        app[RUNTIME_KEY] = RuntimeHolder(runtime)
        app[METRICS_KEY].config_last_reload_success.set_to_current_time()
        polling = asyncio.get_running_loop().create_task(watcher.run())
        yield
        polling.cancel()
        await retire_runtime(app[RUNTIME_KEY].current, None)
        await upstream_pool.close()
        await websocket_client.close()
        await provider_client.close()

    app.cleanup_ctx.append(resources)
    app.on_response_prepare.append(_response_finisher(drain))
    app.on_response_prepare.append(close_unless_body_read)
    return app


def _handler(
    drain: Drain, guard: ConnectionGuard
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        """observe -> accept -> dispatch, called directly: as aiohttp middlewares the two stages
        cost a wrapper per request and stage for nothing the catch-all route needs. The runtime
        is taken here, once, and is the one the whole request uses. Being the app's one
        handler, it is where a connection's first request head is known to be complete (the
        guard's head deadline ends), and where the drain counts it in flight."""
        guard.head_arrived(request.transport)
        connection = request.protocol
        drain.request_started(connection)
        try:
            return await observe(request, request.app[RUNTIME_KEY].current, _accepted)
        finally:
            drain.request_ended(connection)

    return handle


async def _accepted(request: web.Request, runtime: Runtime) -> web.StreamResponse:
    request, ctx = accept(request, runtime)
    tracing = runtime.tracing
    if tracing is not None:
        ctx.trace = tracing.start(
            request.headers, method=ctx.method, from_trusted_proxy=ctx.from_trusted_proxy
        )
    return await dispatch(request, ctx)


def _response_finisher(
    drain: Drain,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def finish_response(request: web.Request, response: web.StreamResponse) -> None:
        """Whatever response a request ends with (page, redirect, error, streamed upstream
        answer), it carries the request id of its decision-log line and the session cookie
        changes it earned; while draining, it closes its connection and says so."""
        if drain.draining and response.status != 101:
            # RFC 9112 9.6: "A client that receives a "close" connection option MUST cease
            # sending requests on that connection and close the connection after reading the
            # response message containing the "close" connection option": its next request goes
            # on a new connection (to another replica) instead of racing our close.
            response.force_close()
            response.headers[hdrs.CONNECTION] = "close"
        ctx = request.get(CONTEXT_KEY)
        if ctx is None:
            return
        response.headers["X-Request-Id"] = ctx.request_id
        if ctx.set_cookies:
            ctx.runtime.cookies.apply(response, ctx.set_cookies)

    return finish_response
