"""`idgate serve`: the proxy and its metrics listener until SIGTERM or SIGINT; SIGHUP reloads."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from proxy.app import build_app
from proxy.audit import start_log_writer
from proxy.config.model import ListenAddress, Settings
from proxy.config.reload import reload_config
from proxy.keys import METRICS_KEY
from proxy.metrics import Metrics

_log = logging.getLogger("idgate.serve")


def build_metrics_app(metrics: Metrics) -> web.Application:
    """`/metrics` on its own listener, so the public port never exposes it."""

    async def scrape(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def _start_site(app: web.Application, listen: ListenAddress) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    # reuse_port lets several worker processes accept on one port.
    site = web.TCPSite(runner, listen.host, listen.port, reuse_port=True, backlog=1024)
    await site.start()
    return runner


async def serve(settings: Settings, *, config_path: Path, environ: Mapping[str, str]) -> None:
    app = build_app(settings)
    runner = await _start_site(app, settings.listen)
    runners = [runner]
    if settings.metrics.listen is not None:
        runners.append(
            await _start_site(build_metrics_app(app[METRICS_KEY]), settings.metrics.listen)
        )
    _log.info("idgate listening on %s (pid %d)", settings.listen, os.getpid())

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    background: set[asyncio.Task[Any]] = set()

    def spawn(coroutine: Coroutine[Any, Any, Any]) -> None:
        task = loop.create_task(coroutine)
        background.add(task)
        task.add_done_callback(background.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: spawn(reload_config(app, config_path, environ)))
    try:
        await stop.wait()
    finally:
        _log.info("idgate stopping")
        for task in background:
            task.cancel()
        for each in reversed(runners):
            await each.cleanup()


def run(settings: Settings, *, config_path: Path, environ: Mapping[str, str]) -> None:
    listener = start_log_writer(settings.log.level)
    try:
        asyncio.run(serve(settings, config_path=config_path, environ=environ))
    finally:
        listener.stop()
