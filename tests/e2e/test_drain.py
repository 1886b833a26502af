"""`idgate serve` stopped with SIGTERM: requests in flight finish, nothing new is accepted, the
process exits 0, and a restart under load on a shared port fails no request."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import Entry, IdgateProcess, base_document, running_idgate
from tests.support.held_upstream import HeldUpstream, serve_held
from tests.support.raw_http import RawConnection
from tests.support.upstream import serve_echo

DRAINING: Final = re.compile(r"draining \(pid (\d+)\)")
STOPPED: Final = re.compile(r"idgate stopped \(pid (\d+)\): (\d+) requests were in flight")
STOPPED_ACCEPTING: Final = "stopped accepting connections"
#: The drain's own bound in these tests; a process still running after it has failed.
GRACE_SECONDS: Final = 10.0


def _document(issuer: str, upstream: str, **drain: str) -> dict[str, Any]:
    routes = [{"name": "public", "path": "/public", "upstream": upstream, "public": True}]
    return {**base_document(issuer, routes), "drain": {"grace": f"{GRACE_SECONDS:g}s", **drain}}


def _message(pattern: re.Pattern[str] | str) -> Callable[[Entry], bool]:
    if isinstance(pattern, str):
        return lambda entry: str(entry.get("msg", "")).startswith(pattern)
    return lambda entry: pattern.match(str(entry.get("msg", ""))) is not None


async def _held_requests(
    gate: IdgateProcess, upstream: HeldUpstream, count: int
) -> list[RawConnection]:
    """`count` requests in flight, each on its own connection, all arrived at the upstream."""
    connections = [await RawConnection.open("127.0.0.1", gate.port) for _ in range(count)]
    for connection in connections:
        await connection.send("/public/held")
    await upstream.wait_held(count)
    return connections


async def _close_all(connections: list[RawConnection]) -> None:
    for connection in connections:
        await connection.close()


async def test_sigterm_lets_requests_in_flight_finish_refuses_new_ones_and_exits_0(
    oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """After SIGTERM, `/readyz` is 503 while the listener still accepts (`drain.delay`); then new
    connections are refused, an idle kept-alive connection is closed, one that sends a request
    gets its answer with `Connection: close`, each request in flight completes with 200, and the
    process exits 0 within the grace."""
    upstream = await serve_held(aiohttp_server)
    document = _document(oidc_provider.issuer, upstream.url, delay="2s")
    connections: list[RawConnection] = []
    with running_idgate(tmp_path, document) as gate:
        try:
            kept_alive = await RawConnection.open("127.0.0.1", gate.port)
            idle = await RawConnection.open("127.0.0.1", gate.port)
            connections += [kept_alive, idle]
            for connection in (kept_alive, idle):
                before = await connection.get("/public/before")
                assert (before.status, before.closes) == (200, False)
            in_flight = await _held_requests(gate, upstream, 3)
            connections += in_flight
            mark = gate.log_mark()

            gate.send_term()

            await gate.wait_for_entry(_message(DRAINING), after=mark)
            try:
                probe = await RawConnection.open("127.0.0.1", gate.port)
            except ConnectionRefusedError:
                # Only a machine too slow to ask within `delay` gets here: the listener closed.
                assert any(_message(STOPPED_ACCEPTING)(e) for e in gate.log_entries()[mark:])
            else:
                connections.append(probe)
                ready = await probe.get("/readyz")
                assert (ready.status, ready.closes) == (503, True)
            during = await kept_alive.get("/public/during")
            assert (during.status, during.closes) == (200, True)
            assert await kept_alive.closed_by_server()

            await gate.wait_for_entry(_message(STOPPED_ACCEPTING), after=mark)
            with pytest.raises(ConnectionRefusedError):
                await RawConnection.open("127.0.0.1", gate.port)
            assert await idle.closed_by_server()

            upstream.release()
            for connection in in_flight:
                response = await connection.response()
                assert (response.status, response.closes) == (200, True)
            assert await asyncio.to_thread(gate.wait_exit, GRACE_SECONDS) == 0
            stopped = await gate.wait_for_entry(_message(STOPPED), after=mark)
            assert " 3 requests were in flight" in stopped["msg"]
            assert "0 requests cut" in stopped["msg"]
        finally:
            upstream.release()
            await _close_all(connections)


@dataclass(kw_only=True)
class Load:
    """A bounded number of GETs over a fixed number of kept-alive connections, as a load
    balancer sends them: a response with `Connection: close` ends its connection, and only a
    refused connection attempt is retried (nothing was sent on it)."""

    port: int
    requests: int
    at_half: Callable[[], None]
    """Called once, when half of the requests have been answered."""
    answered: int = 0
    closes: int = 0
    """Responses that said `Connection: close`: requests a draining process answered."""
    failures: list[str] = field(default_factory=list)
    _tickets: int = 0

    async def run(self, connections: int) -> None:
        self._tickets = self.requests
        await asyncio.gather(*(self._worker(index) for index in range(connections)))

    async def _worker(self, index: int) -> None:
        connection: RawConnection | None = None
        while self._tickets > 0:
            self._tickets -= 1
            if connection is None:
                connection = await self._connect()
            try:
                response = await connection.get(f"/public/{index}")
            except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as error:
                self.failures.append(f"connection {index}: {error!r}")
                await connection.close()
                connection = None
                continue
            if response.status != 200:
                self.failures.append(f"connection {index}: status {response.status}")
            self.answered += 1
            if self.answered == self.requests // 2:
                self.at_half()
            if response.closes:
                self.closes += 1
                await connection.close()
                connection = None
        if connection is not None:
            await connection.close()

    async def _connect(self) -> RawConnection:
        while True:
            try:
                return await RawConnection.open("127.0.0.1", self.port)
            except ConnectionRefusedError:
                continue


@pytest.mark.parametrize(
    "delay",
    [
        # Kubernetes: SIGTERM after the preStop pause. Kept-alive connections are busy at SIGTERM.
        "0",
        # Load balancers without endpoint updates: clients reconnect to the draining process
        # until its listener closes, with connections in its accept queue.
        "300ms",
    ],
)
async def test_a_restart_under_load_on_a_shared_port_fails_no_request(
    oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path, delay: str
) -> None:
    """200 requests over 20 kept-alive connections, spread by the kernel over two idgates on one
    port (SO_REUSEPORT), one of which gets SIGTERM halfway: every request is answered 200, the
    stopped one exits 0, and the other still serves."""
    upstream = await serve_echo(aiohttp_server)
    document = _document(oidc_provider.issuer, upstream.url, delay=delay)
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    with (
        running_idgate(tmp_path / "old", document) as old,
        running_idgate(tmp_path / "new", document, port=old.port) as new,
    ):
        mark = old.log_mark()
        load = Load(port=old.port, requests=200, at_half=old.send_term)

        await load.run(connections=20)

        assert load.failures == []
        assert load.answered == 200
        assert load.closes > 0, "the stopped idgate answered nothing while draining"
        assert await asyncio.to_thread(old.wait_exit, GRACE_SECONDS) == 0
        stopped = await old.wait_for_entry(_message(STOPPED), after=mark)
        assert "0 requests cut" in stopped["msg"]
        ready = await (probe := await RawConnection.open("127.0.0.1", new.port)).get("/readyz")
        await probe.close()
        assert ready.status == 200


async def test_sigterm_to_the_supervisor_drains_every_worker(
    oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """With `workers: 2`, SIGTERM to the supervisor drains both workers: each logs its drain,
    every request in flight on either completes with 200, and the supervisor exits 0."""
    upstream = await serve_held(aiohttp_server)
    document = _document(oidc_provider.issuer, upstream.url)
    connections: list[RawConnection] = []
    with running_idgate(tmp_path, document, workers=2) as gate:
        try:
            connections = await _held_requests(gate, upstream, 6)
            mark = gate.log_mark()

            gate.send_term()

            draining = set()
            for _ in range(2):
                entry = await gate.wait_for_entry(
                    lambda e: (
                        (found := DRAINING.match(str(e.get("msg", "")))) is not None
                        and found.group(1) not in draining
                    ),
                    after=mark,
                )
                draining.add(DRAINING.match(entry["msg"]).group(1))  # type: ignore[union-attr]
            upstream.release()
            for connection in connections:
                response = await connection.response()
                assert (response.status, response.closes) == (200, True)
            assert await asyncio.to_thread(gate.wait_exit, GRACE_SECONDS + 10) == 0
            stopped = [
                found.groups()
                for entry in gate.log_entries()[mark:]
                if (found := STOPPED.match(str(entry.get("msg", "")))) is not None
            ]
            assert {pid for pid, _ in stopped} == draining
            assert sum(int(count) for _, count in stopped) == 6
        finally:
            upstream.release()
            await _close_all(connections)
