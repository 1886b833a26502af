"""`idgate serve`: one process, or a supervisor and a worker per core; SIGHUP reloads.

With `workers: 1` the one process serves the proxy and `/metrics`. With more, each worker serves
the proxy on the shared port and the supervisor serves `/metrics` for all of them
(proxy/server/supervisor.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import ssl
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from proxy.config.model import ListenAddress, Settings
from proxy.config.tls_context import server_context
from proxy.observability.decision_log import start_log_writer
from proxy.server.app import build_app
from proxy.server.reload import reload_config
from proxy.stages.context import METRICS_KEY

_log = logging.getLogger("idgate.serve")

_GC_YOUNG_THRESHOLD: Final = 20_000
_GC_OLDER_THRESHOLD: Final = 20


def build_metrics_app(registry: CollectorRegistry) -> web.Application:
    """`/metrics` on its own listener, so the public port never exposes it."""

    async def scrape(request: web.Request) -> web.Response:
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def _start_site(
    app: web.Application, listen: ListenAddress, *, tls: ssl.SSLContext | None = None
) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    # reuse_port lets several worker processes accept on one port.
    site = web.TCPSite(
        runner, listen.host, listen.port, reuse_port=True, backlog=1024, ssl_context=tls
    )
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


def _stop_event(on_hup: Callable[[], None]) -> asyncio.Event:
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
    tls = None if settings.tls is None else server_context(settings.tls)
    runners = [await _start_site(app, settings.listen, tls=tls)]
    if with_metrics and settings.metrics.listen is not None:
        metrics_app = build_metrics_app(metrics.registry)
        runners.append(await _start_site(metrics_app, settings.metrics.listen))
    _settle_garbage_collector()
    _log.info("idgate listening on %s (pid %d)", settings.listen, os.getpid())

    background: set[asyncio.Task[Any]] = set()

    def spawn(coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        background.add(task)
        task.add_done_callback(background.discard)

    if not with_metrics:
        spawn(metrics.buffers.flush_periodically())
    stop = _stop_event(lambda: spawn(reload_config(app, config_path, environ)))
    try:
        await stop.wait()
    finally:
        _log.info("idgate stopping (pid %d)", os.getpid())
        for task in background:
            task.cancel()
        for runner in reversed(runners):
            await runner.cleanup()
        metrics.buffers.flush()


async def _supervise(
    settings: Settings, *, config_path: Path, environ: Mapping[str, str], count: int
) -> None:
    from prometheus_client import multiprocess  # noqa: PLC0415 (needs the env var set first)

    from proxy.server.supervisor import Supervisor  # noqa: PLC0415

    supervisor = Supervisor(settings, config_path=config_path, environ=environ, count=count)
    stop = _stop_event(lambda: supervisor.signal_workers(signal.SIGHUP))
    runner = None
    if settings.metrics.listen is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        runner = await _start_site(build_metrics_app(registry), settings.metrics.listen)
    try:
        await supervisor.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()


def _run(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on uvloop where it is installed: its event loop and transports cut the cost
    of every request (see BENCHMARKS.md); the standard loop otherwise."""
    try:
        import uvloop  # noqa: PLC0415 (optional)
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def worker_count(settings: Settings) -> int:
    if settings.workers is not None:
        return settings.workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run(settings: Settings, *, config_path: Path, environ: Mapping[str, str]) -> None:
    """`idgate serve`: blocks until SIGTERM or SIGINT."""
    listener = start_log_writer(settings.log.level)
    count = worker_count(settings)
    try:
        if count == 1:
            _run(serve(settings, config_path=config_path, environ=environ, with_metrics=True))
            return
        from proxy.server.supervisor import (  # noqa: PLC0415
            prepare_multiprocess_metrics,
            remove_multiprocess_metrics,
        )

        directory = prepare_multiprocess_metrics()
        try:
            _run(_supervise(settings, config_path=config_path, environ=environ, count=count))
        finally:
            remove_multiprocess_metrics(directory)
    finally:
        listener.stop()


def run_worker(settings: Settings, *, config_path: Path, environ: Mapping[str, str]) -> None:
    """One worker under the supervisor: the proxy only; the supervisor serves metrics."""
    listener = start_log_writer(settings.log.level)
    try:
        _run(serve(settings, config_path=config_path, environ=environ, with_metrics=False))
    finally:
        listener.stop()
