"""A real redis-server per test, on a unix socket of its own: no port to race for, no disk use."""

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


class RedisServer:
    def __init__(self, process: subprocess.Popen[bytes], socket: Path) -> None:
        self._process = process
        self.socket = socket

    @property
    def url(self) -> Secret:
        return Secret(f"unix://{self.socket}")

    def stop(self) -> None:
        """Take the server down (idempotent), killing it if it ignores SIGTERM."""
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


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """An empty redis-server listening only on a unix socket, stopped when the test ends."""
    executable = require_tool("redis-server", "Redis backs the session store of replicas")
    # Not tmp_path: a unix socket path must stay under ~104 bytes, and test names are long.
    with tempfile.TemporaryDirectory(prefix="idgate-redis-") as directory:
        socket = Path(directory) / "redis.sock"
        process = subprocess.Popen(
            [
                executable,
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        server = RedisServer(process, socket)
        try:
            _wait_until_ready(process)
            yield server
        finally:
            server.stop()
