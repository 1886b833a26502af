"""Several worker processes sharing one port, so idgate uses every core.

Each worker is a full, independent idgate (`serve()`), binding the listen address with
SO_REUSEPORT so the kernel spreads connections across them. This process only supervises:
it restarts a worker that dies, passes SIGHUP (reload) on, drains them all on SIGTERM/SIGINT, and
serves `/metrics` itself, summing every worker's samples through prometheus-client's
multiprocess mode so one scrape of one port sees the whole instance.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Final

from proxy.config.model import DrainSettings, Settings
from proxy.server.drain import longest_drain

_log = logging.getLogger("idgate.supervisor")

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
#: Beyond a worker's longest drain, for it to exit (interpreter and log writer shutdown).
STOP_MARGIN_SECONDS: Final = 5.0
_RESTART_DELAY_SECONDS: Final = 1.0
_POLL_SECONDS: Final = 1.0


def stop_grace_seconds(settings: DrainSettings) -> float:
    """How long the supervisor waits for its workers to drain and exit before it kills them;
    an orchestrator's own stop timeout must exceed it."""
    return longest_drain(settings) + STOP_MARGIN_SECONDS


WorkerMain = Callable[[Path, dict[str, str]], None]
"""A worker process's entry point: the config path and environment; a module-level function,
since a spawned process finds it by name."""


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        config_path: Path,
        environ: Mapping[str, str],
        count: int,
        worker_main: WorkerMain,
    ) -> None:
        self._settings = settings
        self._worker_main = worker_main
        self._config_path = config_path
        self._environ = dict(environ)
        self._count = count
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, BaseProcess] = {}
        self._stopping = False

    def _start_worker(self, index: int) -> None:
        process = self._context.Process(
            target=self._worker_main,
            args=(self._config_path, self._environ),
            name=f"idgate-worker-{index}",
            daemon=False,
        )
        process.start()
        self._workers[index] = process

    def signal_workers(self, signum: int) -> None:
        for process in self._workers.values():
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    async def run(self, stop: asyncio.Event) -> None:
        from prometheus_client import multiprocess  # noqa: PLC0415 (after the env var is set)

        for index in range(self._count):
            self._start_worker(index)
        _log.info("supervising %d workers on %s", self._count, self._settings.listen)
        stopping = asyncio.get_running_loop().create_task(stop.wait())
        while not stop.is_set():
            sentinels = [process.sentinel for process in self._workers.values()]
            # Wakes when a worker exits, at `stop` (the workers start draining at once), and
            # once a second regardless.
            exited = asyncio.ensure_future(asyncio.to_thread(_wait_for_any, sentinels))
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for index, process in list(self._workers.items()):
                if process.is_alive() or stop.is_set():
                    continue
                multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]
                _log.error("worker %d exited with %s; restarting", index, process.exitcode)
                await asyncio.sleep(_RESTART_DELAY_SECONDS)
                self._start_worker(index)
        await self._stop_workers()

    async def _stop_workers(self) -> None:
        """SIGTERM every worker, so they all drain at once; kill what outlives the stop grace."""
        self.signal_workers(signal.SIGTERM)
        grace = stop_grace_seconds(self._settings.drain)
        _log.info("stopping: %d workers draining, killed after %.0fs", len(self._workers), grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for index, process in self._workers.items():
            await asyncio.to_thread(process.join, max(0.0, deadline - loop.time()))
            if process.is_alive():
                _log.error("worker %d still running at the stop grace; killing it", index)
                process.kill()
                await asyncio.to_thread(process.join)


def _wait_for_any(sentinels: list[int]) -> None:
    """Until one of the processes ends, or _POLL_SECONDS pass."""
    multiprocessing.connection.wait(sentinels, _POLL_SECONDS)


def prepare_multiprocess_metrics() -> Path:
    """A fresh directory for the workers' metric files, named in the environment they inherit."""
    directory = Path(tempfile.mkdtemp(prefix="idgate-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def remove_multiprocess_metrics(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
