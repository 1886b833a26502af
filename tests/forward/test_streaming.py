"""Streamed responses through idgate: each piece reaches the client when the upstream sends it."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.config.model import Policy, Route, Rule
from tests.support.gate import Gate, StartGate

#: The upstream holds its second piece back until the test has received the first one: if idgate
#: buffered anything, the first piece would never arrive and the test would time out.
RELEASE = web.AppKey("release", asyncio.Event)


async def events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    await response.write(b"event: tick\ndata: first\n\n")
    await request.app[RELEASE].wait()
    await response.write(b"data: second\n\n")
    await response.write_eof()
    return response


async def chunks(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(b"0123456789")
    await request.app[RELEASE].wait()
    await response.write(b"abcdef")
    await response.write_eof()
    return response


@pytest.fixture
async def release() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
async def gate(
    aiohttp_server: AiohttpServer, release: asyncio.Event, start_gate: StartGate
) -> Gate:
    app = web.Application()
    app[RELEASE] = release
    app.router.add_get("/live/events", events)
    app.router.add_get("/live/chunks", chunks)
    upstream = await aiohttp_server(app)
    route = Route(
        name="live",
        path="/live",
        upstream=f"http://{upstream.host}:{upstream.port}",
        policy=Policy(allow=Rule(authenticated=True)),
    )
    return await start_gate(routes=(route,))


async def test_server_sent_events_arrive_one_by_one(gate: Gate, release: asyncio.Event) -> None:
    """Each server-sent event reaches the client while the upstream still holds the next one."""
    response = await gate.client.get(
        "/live/events", headers={**gate.bearer(), "Accept-Encoding": "gzip, deflate"}
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Content-Length" not in response.headers, "idgate must not wait to count the body"
    assert "Content-Encoding" not in response.headers, "nor compress (and so buffer) it"
    async with asyncio.timeout(5):
        assert await response.content.readuntil(b"\n\n") == b"event: tick\ndata: first\n\n"
        release.set()
        assert await response.content.readuntil(b"\n\n") == b"data: second\n\n"
        assert await response.content.read() == b""


async def test_chunked_response_is_relayed_chunk_by_chunk(
    gate: Gate, release: asyncio.Event
) -> None:
    """A chunked body stays chunked, and its first chunk arrives before the upstream sends more."""
    response = await gate.client.get("/live/chunks", headers=gate.bearer())
    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    async with asyncio.timeout(5):
        assert await response.content.readexactly(10) == b"0123456789"
        release.set()
        assert await response.content.read() == b"abcdef"
