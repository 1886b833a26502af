"""Fixtures of the forwarding tests: a WebSocket upstream and idgate in front of it."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpServer

from tests.forward.sockets import SocketUpstream, serve_sockets, socket_routes
from tests.support.gate import Gate, StartGate


@pytest.fixture
async def sockets(aiohttp_server: AiohttpServer) -> SocketUpstream:
    return await serve_sockets(aiohttp_server)


@pytest.fixture
async def gate(sockets: SocketUpstream, start_gate: StartGate) -> Gate:
    return await start_gate(routes=socket_routes(sockets.url))
