"""`idgate demo` refuses to start on a busy port, with a message instead of a traceback."""

from __future__ import annotations

import socket

import pytest

from proxy.cli import main
from proxy.demo.run import EXIT_FAILED


def test_busy_port_is_refused_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    """With something already listening on the port, the demo exits 1 and suggests --port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert main(["demo", "--port", str(port)], {}) == EXIT_FAILED
    assert (
        f"port {port} on 127.0.0.1 is in use; pick another with --port" in capsys.readouterr().err
    )
