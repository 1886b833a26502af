"""One serving process: the proxy's listener (and, alone, `/metrics`) until SIGTERM; SIGHUP reloads.

SIGTERM (or SIGINT) starts a drain (proxy/server/drain.py); the process exits when it is done.

How many such processes run, and who serves `/metrics` for several, is proxy/server/run.py's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from proxy.certfiles.listener import rotating_server_context
from proxy.certfiles.watch import CertificateWatcher, WatchedContext
from proxy.config.model import ListenAddress, Settings, TLSSettings
from proxy.config.tls_context import build_server_context
from proxy.drain import DRAIN_KEY
from proxy.runtime import RUNTIME_KEY
from proxy.server.admin import MAX_BODY_BYTES, AdminApi, session_index_of
from proxy.server.app import CERTIFICATE_WATCHER_KEY, METRICS_KEY, build_app
from proxy.server.background import Background
from proxy.server.connections import CONNECTION_GUARD_KEY
from proxy.server.drain import CLOSING_SECONDS, drain
from proxy.server.listener import Listener
from proxy.server.reload import reload_config
from proxy.server.server_name import name_the_server

_log = logging.getLogger("idgate.serve")

_GC_YOUNG_THRESHOLD: Final = 20_000
_GC_OLDER_THRESHOLD: Final = 20


def build_metrics_app(
    registry: CollectorRegistry, admin: AdminApi | None = None
) -> web.Application:
    """`/metrics` on its own listener, so the public port never exposes it, and the admin
    endpoints (proxy/server/admin.py), which ask for the admin token besides."""
    name_the_server()

    async def scrape(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/metrics", scrape)
    if admin is not None:
        admin.install(app)
    return app


async def start_site(app: web.Application, listen: ListenAddress) -> web.AppRunner:
    """The metrics listener; the proxy's own is a Listener (proxy/server/listener.py)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    # reuse_port: the next idgate of a rolling restart on one host binds it too.
    site = web.TCPSite(runner, listen.host, listen.port, reuse_port=True, backlog=1024)
    await site.start()
    return runner


def _settle_garbage_collector() -> None:
    """Everything built at start-up lives as long as the process: freezing it keeps the collector
    from walking it again on every full collection. Fewer young collections cut its per-request
    cost; the profile showed full collections over a filled token cache pausing a worker for
    ~100 ms (BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, _GC_OLDER_THRESHOLD, _GC_OLDER_THRESHOLD)


async def _listener_context(tls: TLSSettings, watcher: CertificateWatcher) -> ssl.SSLContext:
    """The listener's context, re-read when its certificate, key, client CAs or CRL change."""
    paths = (tls.cert_file, tls.key_file, tls.client_ca_file, tls.client_crl_file)
    watched = await WatchedContext.load(
        role="listener",
        name="tls",
        paths=tuple(path for path in paths if path is not None),
        build=lambda: build_server_context(tls),
    )
    watcher.add(watched)
    return rotating_server_context(watched)


def stop_event(on_hup: Callable[[], None]) -> asyncio.Event:
    """An event set by SIGTERM or SIGINT; SIGHUP calls `on_hup`."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    return stop


async def serve(
    settings: Settings, *, config_path: Path, environ: Mapping[str, str], with_metrics: bool
) -> None:
    """Serve the proxy (and, when `with_metrics`, its metrics listener) until told to stop.

    Without `with_metrics` this is a worker whose metrics the supervisor reads from its files,
    so it flushes its buffered metrics there periodically (proxy/observability/buffers.py)."""
    app = build_app(settings)
    metrics = app[METRICS_KEY]
    tls = None
    if settings.tls is not None:
        tls = await _listener_context(settings.tls, app[CERTIFICATE_WATCHER_KEY])
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=CLOSING_SECONDS
    )
    await runner.setup()
    listener = await Listener.bind(
        runner, settings.listen, tls=tls, guard=app[CONNECTION_GUARD_KEY]
    )
    metrics_runner = None
    if with_metrics and settings.metrics.listen is not None:
        holder = app[RUNTIME_KEY]
        admin = AdminApi(
            lambda: holder.current.settings.session.secrets,
            lambda: holder.current.revocations,
            metrics.registry,
            lambda: session_index_of(holder.current.sessions.store),
        )
        metrics_app = build_metrics_app(metrics.registry, admin)
        metrics_runner = await start_site(metrics_app, settings.metrics.listen)
    # Taking requests only once every port is bound: a metrics port in use stops the process
    # before it has answered anyone, not after a readiness probe saw it up.
    await listener.start()
    _settle_garbage_collector()
    _log.info("idgate listening on %s (pid %d)", settings.listen, os.getpid())

    background = Background()
    if not with_metrics:
        background.spawn(metrics.buffers.flush_periodically())
    stop = stop_event(lambda: background.spawn(reload_config(app, config_path, environ)))
    try:
        await stop.wait()
        _log.info("idgate stopping (pid %d)", os.getpid())
        assert runner.server is not None  # set up above
        drained = await drain(app[DRAIN_KEY], listener, runner.server, settings.drain)
    finally:
        # The metrics listener serves to the end, so a last scrape sees the drain.
        await runner.cleanup()
        background.cancel()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        metrics.buffers.flush()
    _log.info(
        "idgate stopped (pid %d): %d requests were in flight, %d queued connections taken over, "
        "%d requests cut at the grace, %d websocket tunnels closed",
        os.getpid(),
        drained.in_flight,
        drained.queued,
        drained.cut,
        drained.tunnels,
    )
