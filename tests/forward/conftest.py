"""Fixtures of the forwarding tests: a WebSocket upstream and idgate in front of it."""

from __future__ import annotations

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.forward.sockets import SocketUpstream, socket_routes
from tests.support.gate import Gate, StartGate


@pytest.fixture
async def sockets(aiohttp_server: AiohttpServer) -> SocketUpstream:
    upstream = SocketUpstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    server = await aiohttp_server(app)
    upstream.url = f"http://{server.host}:{server.port}"
    return upstream


@pytest.fixture
async def gate(sockets: SocketUpstream, start_gate: StartGate) -> Gate:
    return await start_gate(routes=socket_routes(sockets.url))
