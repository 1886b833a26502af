"""Starting and stopping the programs under test, each in its own process group.

Every server listens on a free loopback port, writes its logs into the run's directory, and is
stopped (SIGTERM to its group, SIGKILL after a grace period) by the `Servers` stack however the run
ends. Readiness is a TCP connect that succeeds, never a sleep of a guessed length.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from bench import procfs

START_TIMEOUT_SECONDS: Final = 30.0
STOP_GRACE_SECONDS: Final = 10.0


class ServerFailed(RuntimeError):
    """A server did not start; the message holds the tail of its logs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    logs: tuple[Path, ...]
    """Files it writes per request; emptied between runs so a long benchmark never fills a disk."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def usage(self) -> procfs.Usage:
        return procfs.usage(self.process.pid)

    def truncate_logs(self) -> None:
        for path in self.logs:
            if path.exists():
                # Each is opened for appending, so writes after this land at the new end.
                os.truncate(path, 0)

    def stop(self) -> None:
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _tail(paths: Sequence[Path], lines: int = 20) -> str:
    out = []
    for path in paths:
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
    return "\n".join(out)


class Servers:
    """The started servers, stopped in reverse order when the `with` block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._stack = ExitStack()

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stack.close()

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int,
        logs: Sequence[Path] = (),
        environ: Mapping[str, str] | None = None,
        ready_ports: Sequence[int] = (),
    ) -> Server:
        """Run `command` (stdout and stderr to `<name>.out`) until `port` accepts connections."""
        output = self.workdir / f"{name}.out"
        with output.open("ab") as sink:
            process = subprocess.Popen(  # noqa: S603 (the harness runs the programs it benchmarks)
                command,
                cwd=self.workdir,
                env=dict(environ) if environ is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                start_new_session=True,
            )
        server = Server(name=name, port=port, process=process, logs=(output, *logs))
        self._stack.callback(server.stop)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        waiting = [port, *ready_ports]
        while waiting:
            if process.poll() is not None:
                raise ServerFailed(
                    f"{name} exited with {process.returncode}:\n{_tail(server.logs)}"
                )
            if time.monotonic() > deadline:
                raise ServerFailed(f"{name} not listening in time:\n{_tail(server.logs)}")
            if _accepts(waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.05)
        return server
