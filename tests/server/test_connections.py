"""The connection guard on its own: admission against the cap, the first head's deadline, and
the open-file limit it makes room in."""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from proxy.config.model import ServerSettings
from proxy.observability.metrics import Metrics
from proxy.server.connections import ConnectionGuard, make_room_for


class FakeTransport(asyncio.Transport):
    """Records that it was closed; the guard needs nothing else of a transport."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = asyncio.get_running_loop().create_future()

    def close(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class RecordingProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.events.append(f"data {data!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")


def guard_for(registry: CollectorRegistry, **settings: Any) -> ConnectionGuard:
    return ConnectionGuard(ServerSettings(**settings), Metrics(registry))


async def test_past_the_cap_a_connection_is_closed_unseen_and_one_closing_makes_room() -> None:
    """With max_connections 1, a second connection is closed without aiohttp ever seeing it,
    and counted; once the first closes, the next is admitted."""
    registry = CollectorRegistry()
    guard = guard_for(registry, max_connections=1)
    first_inner, second_inner, third_inner = (
        RecordingProtocol(),
        RecordingProtocol(),
        RecordingProtocol(),
    )
    first = guard.protocol_factory(lambda: first_inner)()
    second = guard.protocol_factory(lambda: second_inner)()
    first_transport, second_transport = FakeTransport(), FakeTransport()

    first.connection_made(first_transport)
    second.connection_made(second_transport)
    second.data_received(b"GET / HTTP/1.1\r\n")
    second.connection_lost(None)

    assert second_transport.closed.done()
    assert second_inner.events == []
    assert guard.open_connections == 1
    assert registry.get_sample_value("idgate_connections_refused_total") == 1

    first.connection_lost(None)
    third = guard.protocol_factory(lambda: third_inner)()
    third.connection_made(FakeTransport())
    assert first_inner.events == ["made", "lost"]
    assert third_inner.events == ["made"]
    assert guard.open_connections == 1
    assert registry.get_sample_value("idgate_connections_open") == 1


async def test_a_late_first_head_closes_the_connection_and_is_counted() -> None:
    """No head within request_head_timeout: the guard closes the transport and counts it."""
    registry = CollectorRegistry()
    guard = guard_for(registry, request_head_timeout_seconds=0.01)
    transport = FakeTransport()
    guard.protocol_factory(RecordingProtocol)().connection_made(transport)

    async with asyncio.timeout(5):
        await transport.closed
    assert registry.get_sample_value("idgate_request_head_timeouts_total") == 1


async def test_a_head_that_arrived_in_time_stops_the_deadline() -> None:
    """head_arrived cancels the timer: nothing closes the connection afterwards."""
    registry = CollectorRegistry()
    guard = guard_for(registry, request_head_timeout_seconds=0.01)
    transport = FakeTransport()
    guard.protocol_factory(RecordingProtocol)().connection_made(transport)

    guard.head_arrived(transport)
    await asyncio.sleep(0.05)  # past the deadline: the behaviour under test

    assert not transport.closed.done()
    assert (registry.get_sample_value("idgate_request_head_timeouts_total") or 0) == 0


def test_the_open_file_limit_is_raised_to_fit_the_connection_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Soft limit 1024, hard 1,048,576, 4096 connections: raised to two descriptors a connection
    (client and upstream) plus spare ones, not to the hard limit."""
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1_048_576))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: set_to.append(limits))

    make_room_for(4096)

    assert set_to == [(2 * 4096 + 512, 1_048_576)]


def test_a_hard_limit_too_low_for_the_cap_is_said_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When even the hard limit cannot hold the cap, idgate raises what it can and warns."""
    set_to: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: set_to.append(limits))

    with caplog.at_level(logging.WARNING, logger="idgate.connections"):
        make_room_for(4096)

    assert set_to == [(4096, 4096)]
    assert "server.max_connections 4096 needs about 8704 open files" in caplog.text
