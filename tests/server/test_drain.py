"""The drain sequence in one process: real listening sockets, a held upstream, no signals (those
are tests/e2e/test_drain.py's)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.config.model import DrainSettings, ListenAddress, Policy, Route
from proxy.drain import DRAIN_KEY, Drain
from proxy.server.app import build_app
from proxy.server.connections import CONNECTION_GUARD_KEY
from proxy.server.drain import CLOSING_SECONDS, IDLE_SECONDS, Drained, drain, longest_drain
from proxy.server.listener import Listener
from proxy.server.supervisor import STOP_MARGIN_SECONDS, stop_grace_seconds
from tests.support.gate import StartGate
from tests.support.held_upstream import HeldUpstream, serve_held
from tests.support.issuer import serve_issuer
from tests.support.raw_http import RawConnection
from tests.support.settings import make_settings

STOPPED_ACCEPTING = "stopped accepting connections"


@dataclass(kw_only=True)
class Served:
    """idgate's app on a Listener of its own, in front of a held upstream."""

    upstream: HeldUpstream
    runner: web.AppRunner
    listener: Listener
    port: int
    connections: list[RawConnection] = field(default_factory=list)

    @property
    def state(self) -> Drain:
        return self.runner.app[DRAIN_KEY]

    @property
    def server(self) -> web.Server:
        assert self.runner.server is not None
        return self.runner.server

    async def connect(self) -> RawConnection:
        connection = await RawConnection.open("127.0.0.1", self.port)
        self.connections.append(connection)
        return connection

    async def stop(self) -> None:
        self.upstream.release()
        for connection in self.connections:
            await connection.close()
        await self.runner.cleanup()

    async def drain(self, *, grace: float = 10.0) -> asyncio.Task[Drained]:
        """The drain, started; returns once the listener is closed."""
        settings = DrainSettings(grace_seconds=grace)
        with _logged(STOPPED_ACCEPTING) as stopped:
            task = asyncio.create_task(drain(self.state, self.listener, self.server, settings))
            async with asyncio.timeout(5):
                await stopped.wait()
        return task


@contextmanager
def _logged(message: str) -> Iterator[asyncio.Event]:
    """An event set when the `idgate.serve` logger logs a message starting with `message`."""
    seen = asyncio.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith(message):
                seen.set()

    logger = logging.getLogger("idgate.serve")
    handler = Handler()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _served(aiohttp_server: AiohttpServer, *, shutdown_timeout: float) -> Served:
    issuer = await serve_issuer(aiohttp_server)
    upstream = await serve_held(aiohttp_server)
    route = Route(name="public", path="/public", upstream=upstream.url, policy=Policy(public=True))
    settings = make_settings(issuer.url, upstream.url, routes=(route,))
    app = build_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    listener = await Listener.bind(
        runner,
        ListenAddress(host="127.0.0.1", port=0),
        tls=None,
        guard=app[CONNECTION_GUARD_KEY],
    )
    await listener.start()
    return Served(upstream=upstream, runner=runner, listener=listener, port=listener.ports[0])


@pytest.fixture
async def served(aiohttp_server: AiohttpServer) -> AsyncIterator[Served]:
    served = await _served(aiohttp_server, shutdown_timeout=3.0)
    try:
        yield served
    finally:
        await served.stop()


async def test_requests_in_flight_finish_with_close_and_new_connections_are_refused(
    served: Served,
) -> None:
    """Requests in flight at the drain's start get their answers, each saying `Connection:
    close`; a new connection is refused; the drain ends once they are done."""
    connections = [await served.connect() for _ in range(3)]
    for connection in connections:
        await connection.send("/public/held")
    await served.upstream.wait_held(3)

    drained = await served.drain()
    with pytest.raises(ConnectionRefusedError):
        await served.connect()
    assert not drained.done()
    served.upstream.release()

    for connection in connections:
        response = await connection.response()
        assert (response.status, response.closes) == (200, True)
        assert await connection.closed_by_server()
    async with asyncio.timeout(5):
        summary = await drained
    assert (summary.in_flight, summary.cut, summary.tunnels) == (3, 0, 0)


async def test_a_request_on_a_kept_alive_connection_during_the_drain_is_answered_with_close(
    served: Served,
) -> None:
    """A kept-alive connection that sends its next request during the drain gets the answer,
    with `Connection: close`, and is then closed."""
    connection = await served.connect()
    first = await connection.get("/public/before")
    assert (first.status, first.closes) == (200, False)
    await served.drain()

    during = await connection.get("/public/during")

    assert (during.status, during.closes) == (200, True)
    assert await connection.closed_by_server()


async def test_an_idle_kept_alive_connection_is_closed_after_a_second_of_nothing(
    served: Served,
) -> None:
    """A kept-alive connection with nothing in flight is closed by the drain after IDLE_SECONDS
    (not at once, not at the keep-alive timeout), and the drain then ends."""
    connection = await served.connect()
    assert (await connection.get("/public/before")).status == 200
    started = time.monotonic()
    drained = await served.drain()

    assert await connection.closed_by_server()
    waited = time.monotonic() - started
    async with asyncio.timeout(5):
        await drained
    assert IDLE_SECONDS <= waited < IDLE_SECONDS + 2


async def test_connections_queued_when_the_listener_closes_are_served(served: Served) -> None:
    """A connection the kernel accepted but idgate had not taken yet when its listener closed is
    served, not reset: no request of it is lost."""
    # Blocking, with no await before the close: the event loop cannot take this connection first.
    client = socket.create_connection(("127.0.0.1", served.port))
    client.sendall(b"GET /public/queued HTTP/1.1\r\nHost: idgate.test\r\n\r\n")

    queued = await served.listener.close()

    assert queued == 1
    reader, writer = await asyncio.open_connection(sock=client)
    response = await RawConnection(reader, writer).response()
    assert response.status == 200
    writer.close()


async def test_requests_still_running_at_the_grace_are_counted_and_cut(
    aiohttp_server: AiohttpServer,
) -> None:
    """A request still in flight when the grace ends is counted as cut, and its connection is
    closed when the server shuts down, without an answer."""
    served = await _served(aiohttp_server, shutdown_timeout=0.1)
    try:
        connection = await served.connect()
        await connection.send("/public/held")
        await served.upstream.wait_held(1)

        summary = await (await served.drain(grace=0.2))
        await served.runner.cleanup()

        assert (summary.in_flight, summary.cut) == (1, 1)
        assert await connection.closed_by_server()
    finally:
        await served.stop()


async def test_readyz_is_503_from_the_drain_on_and_healthz_stays_200(
    start_gate: StartGate,
) -> None:
    """Once draining, `/readyz` answers 503 (provider and store fine or not) and `/healthz` 200,
    each with `Connection: close`."""
    gate = await start_gate()
    assert (await gate.client.get("/readyz")).status == 200

    gate.client.app[DRAIN_KEY].begin()

    ready = await gate.client.get("/readyz")
    assert (ready.status, await ready.json()) == (503, {"ready": False, "draining": True})
    assert ready.headers["Connection"] == "close"
    healthy = await gate.client.get("/healthz")
    assert (healthy.status, healthy.headers["Connection"]) == (200, "close")


def test_the_supervisor_waits_for_the_longest_drain_and_a_margin() -> None:
    """The supervisor kills a worker only after the delay, the grace, aiohttp's two closing
    waits and a margin to exit: never in the middle of a drain."""
    settings = DrainSettings(delay_seconds=2.0, grace_seconds=10.0)

    assert longest_drain(settings) == 2.0 + 10.0 + 2 * CLOSING_SECONDS
    assert stop_grace_seconds(settings) == longest_drain(settings) + STOP_MARGIN_SECONDS
