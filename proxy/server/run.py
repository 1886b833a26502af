"""`idgate serve`: one process, or a supervisor and a worker per core.

With `workers: 1` the one process serves the proxy and `/metrics` (proxy/server/serve.py). With
more, each worker serves the proxy on the shared port and the supervisor
(proxy/server/supervisor.py) serves `/metrics` for all of them, and the admin endpoints, whose
revocations reach the workers through the file they follow (proxy/sessions/revocation_log.py)
or Redis; on SIGHUP it reloads its admin state (proxy/server/supervisor_admin.py) as the workers
reload theirs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.config.advice import config_warnings
from proxy.config.load import load_settings
from proxy.config.model import Settings
from proxy.observability.decision_log import start_log_writer
from proxy.server.admin import AdminApi
from proxy.server.background import Background
from proxy.server.serve import build_metrics_app, serve, start_site, stop_event
from proxy.server.supervisor import (
    Supervisor,
    prepare_multiprocess_metrics,
    remove_multiprocess_metrics,
)
from proxy.server.supervisor_admin import SupervisorAdmin, open_admin_state
from proxy.sessions.revocation_log import ENV as REVOCATION_LOG_ENV

_log = logging.getLogger("idgate.config")


async def _supervise(
    settings: Settings, *, config_path: Path, environ: Mapping[str, str], count: int
) -> None:
    from prometheus_client import multiprocess  # noqa: PLC0415 (needs the env var set first)

    supervisor = Supervisor(
        settings, config_path=config_path, environ=environ, count=count, worker_main=_worker_main
    )
    # The supervisor writes the operator's revocations to the list its workers follow, and
    # follows it too, so `idgate_revocations_active` stays current.
    admin = SupervisorAdmin(await open_admin_state(settings))
    background = Background()

    def reload() -> None:
        supervisor.signal_workers(signal.SIGHUP)
        background.spawn(admin.reload(config_path, environ))

    stop = stop_event(reload)
    runner = None
    try:
        if settings.metrics.listen is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            api = AdminApi(admin.secrets, admin.revocations, registry, admin.index)
            runner = await start_site(build_metrics_app(registry, api), settings.metrics.listen)
        await supervisor.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()
        background.cancel()
        await admin.close()


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


def prepare_revocation_log() -> Path:
    """A fresh 0700 directory for the revocation log the workers share, named in the
    environment they inherit; it outlives any one worker, so a restarted worker reads it again."""
    directory = Path(tempfile.mkdtemp(prefix="idgate-revocations-"))
    os.environ[REVOCATION_LOG_ENV] = str(directory / "revocations.log")
    return directory


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
    for warning in config_warnings(settings):
        _log.warning("config: %s", warning)
    count = worker_count(settings)
    try:
        if count == 1:
            _run(serve(settings, config_path=config_path, environ=environ, with_metrics=True))
            return
        directory = prepare_multiprocess_metrics()
        revocation_log = prepare_revocation_log()
        try:
            _run(_supervise(settings, config_path=config_path, environ=environ, count=count))
        finally:
            remove_multiprocess_metrics(directory)
            shutil.rmtree(revocation_log, ignore_errors=True)
    finally:
        listener.stop()


def _serve_worker(settings: Settings, *, config_path: Path, environ: Mapping[str, str]) -> None:
    """One worker under the supervisor: the proxy only; the supervisor serves metrics."""
    listener = start_log_writer(settings.log.level)
    try:
        _run(serve(settings, config_path=config_path, environ=environ, with_metrics=False))
    finally:
        listener.stop()


def _worker_main(config_path: Path, environ: dict[str, str]) -> None:
    """Entry point of a worker process (spawned: a fresh interpreter, nothing inherited)."""
    from prometheus_client import values  # noqa: PLC0415 (imported in the child)

    # prometheus-client calls os.getpid() on every metric update to notice a fork(); a spawned
    # worker never forks, so its pid is read once (a profiled 12% of a request's time).
    pid = os.getpid()
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid)  # type: ignore[no-untyped-call]

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops us
    _serve_worker(load_settings(config_path, environ), config_path=config_path, environ=environ)
