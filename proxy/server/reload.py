"""Reload: read the config again, build a new Runtime, swap it in whole; on any issue keep the old.

A reload runs as a background task of the server (proxy/server/serve.py): it never raises, so a
failure is always logged and counted rather than lost with the task.

Keys that shape the listening sockets (`listen`, `workers`, `metrics.listen`, `tls`, and the
connection-level `server.request_head_timeout`, `server.keepalive_timeout`,
`server.max_connections`) and the stop sequence (`drain`) take effect at the next restart; a
reload that changes them says so and applies everything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from proxy.config.advice import config_warnings
from proxy.config.load import ConfigError, load_settings
from proxy.runtime import RUNTIME_KEY, build_runtime, retire_runtime
from proxy.server.app import METRICS_KEY, PROVIDER_CLIENT_KEY

_log = logging.getLogger("idgate.config")


async def reload_config(app: web.Application, path: Path, environ: Mapping[str, str]) -> bool:
    """True when the new configuration now serves requests; False when the old one still does."""
    metrics = app[METRICS_KEY]
    holder = app[RUNTIME_KEY]
    old = holder.current
    try:
        settings = await asyncio.to_thread(load_settings, path, environ)
    except ConfigError as error:
        for issue in error.issues:
            _log.error("config reload refused: %s", issue)
        metrics.config_reloads.labels(result="failure").inc()
        return False
    restart_only = [
        key
        for key, before, after in (
            ("listen", old.settings.listen, settings.listen),
            ("workers", old.settings.workers, settings.workers),
            ("metrics.listen", old.settings.metrics.listen, settings.metrics.listen),
            ("tls", old.settings.tls, settings.tls),
            # The supervisor's stop deadline is derived from it at start.
            ("drain", old.settings.drain, settings.drain),
            (
                "server.request_head_timeout",
                old.settings.server.request_head_timeout_seconds,
                settings.server.request_head_timeout_seconds,
            ),
            (
                "server.keepalive_timeout",
                old.settings.server.keepalive_timeout_seconds,
                settings.server.keepalive_timeout_seconds,
            ),
            (
                "server.max_connections",
                old.settings.server.max_connections,
                settings.server.max_connections,
            ),
        )
        if before != after
    ]
    if restart_only:
        _log.warning("config keys %s change at the next restart", ", ".join(restart_only))
    try:
        new = await build_runtime(
            settings, http=app[PROVIDER_CLIENT_KEY], metrics=metrics, previous=old
        )
    except Exception:  # noqa: BLE001 (whatever broke the new runtime, the old one keeps serving)
        _log.exception("config reload failed while building the new configuration")
        metrics.config_reloads.labels(result="failure").inc()
        return False
    holder.current = new
    await retire_runtime(old, new)
    metrics.config_reloads.labels(result="success").inc()
    metrics.config_last_reload_success.set_to_current_time()
    _log.info("configuration reloaded: %d routes", len(settings.routes))
    for warning in config_warnings(settings):
        _log.warning("config: %s", warning)
    return True
