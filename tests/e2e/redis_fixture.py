"""A real redis-server per test, on a unix socket of its own: no port to race for.

`redis_server` keeps nothing on disk. `persistent_redis_server` writes every change to an
append-only file before answering, so `restart()` (stop, start again at the same socket) brings
back what it held, as a Redis with persistence does after a crash or an upgrade.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.config.model import Secret
from tests.e2e.tools import require_tool, stop_process

READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
#: Redis 7.0 says "The server is now ready to accept connections at <socket>", 7.2+ says
#: "Ready to accept connections unix": both contain this, compared case-insensitively.
READY_MARK = b"ready to accept connections"
_EPHEMERAL = ("--save", "", "--appendonly", "no")
_PERSISTENT = ("--save", "", "--appendonly", "yes", "--appendfsync", "always")


class RedisServer:
    """A redis-server in `directory` (its socket and, if persistent, its data); see `start`."""

    def __init__(self, executable: str, directory: Path, *, persistent: bool) -> None:
        self.socket = directory / "redis.sock"
        self._command = [
            executable,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            *(_PERSISTENT if persistent else _EPHEMERAL),
            "--dir",
            str(directory),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> Secret:
        return Secret(f"unix://{self.socket}")

    def start(self) -> None:
        """Start the server (not already running) and return once it accepts connections."""
        assert self._process is None or self._process.poll() is not None, "already running"
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        _wait_until_ready(self._process)

    def stop(self) -> None:
        """Take the server down (idempotent), killing it if it ignores SIGTERM."""
        if self._process is not None:
            stop_process(self._process, STOP_TIMEOUT)


def _wait_until_ready(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    output = b""
    deadline = time.monotonic() + READY_TIMEOUT
    while READY_MARK not in output.lower():
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([fd], [], [], max(remaining, 0))
        chunk = os.read(fd, 4096) if readable else b""
        if not chunk:
            code = process.poll()
            why = f"not ready within {READY_TIMEOUT}s" if code is None else f"exited with {code}"
            tail = "\n".join(output.decode(errors="replace").splitlines()[-20:])
            pytest.fail(f"redis-server {why}; its output:\n{tail}", pytrace=False)
        output += chunk


def _running_redis(*, persistent: bool) -> Iterator[RedisServer]:
    executable = require_tool("redis-server", "Redis backs the session store of replicas")
    # Not tmp_path: a unix socket path must stay under ~104 bytes, and test names are long.
    with tempfile.TemporaryDirectory(prefix="idgate-redis-") as directory:
        server = RedisServer(executable, Path(directory), persistent=persistent)
        try:
            server.start()
            yield server
        finally:
            server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """An empty redis-server listening only on a unix socket, stopped when the test ends."""
    yield from _running_redis(persistent=False)


@pytest.fixture
def persistent_redis_server() -> Iterator[RedisServer]:
    """Like `redis_server`, with every write on disk first: a restart keeps the sessions."""
    yield from _running_redis(persistent=True)
