"""Responses name idgate without a version, whoever writes them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from proxy.server.serve import build_metrics_app
from tests.support.gate import Gate
from tests.support.raw_http import send_raw


async def test_own_answers_and_refusals_say_server_idgate(gate: Gate) -> None:
    """An own endpoint, a 404 page and a 401 say `Server: idgate`; an upstream's answer without
    a Server header gains no version either."""
    for path in ("/healthz", "/nowhere", "/admin", "/public"):
        response = await gate.client.get(path)
        assert response.headers.getall("Server") == ["idgate"], path


async def test_parser_refusal_says_server_idgate(gate: Gate) -> None:
    """The 400 aiohttp's parser answers to a malformed request line names no version either."""
    server = gate.client.server
    answer = await send_raw(server.host, server.port, b"NOT A REQUEST\r\n\r\n")
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.split(" ")[1] == "400"
    assert "\r\nServer: idgate\r\n" in head + "\r\n"
    assert "aiohttp" not in head
    assert "Python" not in head


async def test_metrics_listener_says_server_idgate(aiohttp_client: AiohttpClient) -> None:
    """The metrics listener, an aiohttp app of its own, names no version."""
    client = await aiohttp_client(build_metrics_app(CollectorRegistry()))
    response = await client.get("/metrics")
    assert response.headers["Server"] == "idgate"
