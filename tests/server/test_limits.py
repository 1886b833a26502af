"""What a connection may cost, over raw sockets: idgate listening as `idgate serve` does (a
guarded Listener), short timeouts, and a scripted upstream that writes exact bytes. Each test runs
on asyncio's loop and on uvloop's, which production uses.

Every wait is on the socket being closed (or answered) by idgate, bounded by an asyncio timeout.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.config.model import ServerSettings, TLSSettings, UpstreamSettings
from proxy.config.tls_context import server_context
from proxy.server.app import build_app
from proxy.server.connections import CONNECTION_GUARD_KEY
from proxy.server.listener import Listener
from tests.support.certificates import CertificateAuthority
from tests.support.context import NO_PROVIDER
from tests.support.loops import on_each_loop
from tests.support.scripted_upstream import Peer, Script, ScriptedUpstream, answer, answering
from tests.support.settings import make_settings

#: The bound on every wait: far above the configured timeouts, far below a hang.
BOUND = 5.0
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


@dataclass(kw_only=True)
class Listening:
    port: int
    registry: CollectorRegistry

    def metric(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@asynccontextmanager
async def listening(
    upstream_url: str = NO_PROVIDER,
    *,
    server: ServerSettings | None = None,
    upstream: UpstreamSettings | None = None,
    tls: TLSSettings | None = None,
) -> AsyncIterator[Listening]:
    """idgate on 127.0.0.1, port 0, started and stopped as `idgate serve` does it."""
    registry = CollectorRegistry()
    settings = make_settings(
        NO_PROVIDER,
        upstream_url,
        server=server or ServerSettings(),
        upstream=upstream or UpstreamSettings(),
        tls=tls,
    )
    app = build_app(settings, registry=registry)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    listener = await Listener.bind(
        runner,
        settings.listen,
        tls=None if tls is None else server_context(tls),
        guard=app[CONNECTION_GUARD_KEY],
    )
    await listener.start()
    try:
        yield Listening(port=listener.ports[0], registry=registry)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def upstream_playing(script: Script) -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream(script) as upstream:
        yield upstream


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything idgate sends until it closes the connection (a reset counts as closing)."""
    received = b""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One response with a Content-Length: its head and its body."""
    async with asyncio.timeout(BOUND):
        head = await reader.readuntil(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        assert length is not None, head
        return head, await reader.readexactly(int(length[1]))


def get(path: str = "/public", *headers: bytes) -> bytes:
    fields = b"".join(header + b"\r\n" for header in headers)
    return b"GET %b HTTP/1.1\r\nHost: idgate.test\r\n%b\r\n" % (path.encode(), fields)


# --- client side: timeouts ----------------------------------------------------------------------


@on_each_loop
async def test_a_connection_that_sends_nothing_is_closed_after_the_request_head_timeout() -> None:
    """No byte at all: closed, unanswered, once request_head_timeout (0.2 s) has passed."""
    server = ServerSettings(request_head_timeout_seconds=0.2, keepalive_timeout_seconds=60)
    async with listening(server=server) as gate:
        reader, writer = await gate.connect()
        started = asyncio.get_running_loop().time()
        assert await until_closed(reader) == b""
        assert asyncio.get_running_loop().time() - started >= 0.15
        writer.close()
        assert gate.metric("idgate_request_head_timeouts_total") == 1


@on_each_loop
async def test_a_head_dribbled_byte_by_byte_is_closed_when_the_whole_head_is_late() -> None:
    """A byte every 20 ms never completes the head: the deadline is not restarted per byte, so
    the connection is closed at request_head_timeout (0.3 s) while bytes are still coming."""
    sent = 0

    async def dribble(writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"GET /public HTTP/1.1\r\nHost: idgate.test\r\nX-Slow: ")
        while True:
            writer.write(b"a")
            sent += 1
            await writer.drain()
            await asyncio.sleep(0.02)  # the attacker's pace under test, not a synchronisation

    server = ServerSettings(request_head_timeout_seconds=0.3, keepalive_timeout_seconds=60)
    async with (
        upstream_playing(answering(answer())) as upstream,
        listening(upstream.url, server=server) as gate,
    ):
        reader, writer = await gate.connect()
        dribbling = asyncio.ensure_future(dribble(writer))
        started = asyncio.get_running_loop().time()
        assert await until_closed(reader) == b""
        elapsed = asyncio.get_running_loop().time() - started
        dribbling.cancel()
        writer.close()
        assert elapsed >= 0.25
        assert sent >= 5, "bytes kept arriving until the end"
        assert upstream.connections == 0


@on_each_loop
async def test_an_idle_keepalive_connection_is_closed_after_the_keepalive_timeout() -> None:
    """After a response, no next request within keepalive_timeout (0.3 s): closed."""
    server = ServerSettings(request_head_timeout_seconds=60, keepalive_timeout_seconds=0.3)
    async with (
        upstream_playing(answering(answer(b"hello"))) as upstream,
        listening(upstream.url, server=server) as gate,
    ):
        reader, writer = await gate.connect()
        writer.write(get())
        head, body = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert body == b"hello"
        answered = asyncio.get_running_loop().time()
        assert await until_closed(reader) == b""
        assert asyncio.get_running_loop().time() - answered >= 0.25
        writer.close()


@on_each_loop
async def test_a_connection_whose_first_request_was_answered_outlives_the_head_timeout() -> None:
    """The head deadline is for the first head only: a kept-alive connection serves a second
    request after it has passed."""
    server = ServerSettings(request_head_timeout_seconds=0.1, keepalive_timeout_seconds=60)
    async with (
        upstream_playing(answering(answer(b"hello"))) as upstream,
        listening(upstream.url, server=server) as gate,
    ):
        reader, writer = await gate.connect()
        writer.write(get())
        assert (await read_response(reader))[1] == b"hello"
        await asyncio.sleep(0.3)  # past the head deadline: the behaviour under test
        writer.write(get())
        assert (await read_response(reader))[1] == b"hello"
        writer.close()
        assert gate.metric("idgate_request_head_timeouts_total") == 0


@on_each_loop
async def test_a_stalled_upload_gets_408_and_the_upstream_connection_is_closed() -> None:
    """Content-Length 100, 10 bytes, then silence: after body_idle_timeout (0.2 s) the client
    gets 408 and its connection closed; the upstream has the head, those 10 bytes, and then its
    connection closed."""
    received: list[bytes] = []

    async def script(peer: Peer) -> None:
        received.append(await peer.reader.readuntil(b"\r\n\r\n"))
        received.append(await peer.reader.read())  # until idgate closes

    server = ServerSettings(body_idle_timeout_seconds=0.2)
    async with upstream_playing(script) as upstream, listening(upstream.url, server=server) as gate:
        reader, writer = await gate.connect()
        writer.write(
            b"POST /public HTTP/1.1\r\nHost: idgate.test\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        head, _ = await read_response(reader)
        assert await until_closed(reader) == b""
        writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"\r\nConnection: close\r\n" in head
    assert received[0].startswith(b"POST /public HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 100\r\n" in received[0]
    assert received[1] == b"0123456789"


@on_each_loop
async def test_over_tls_a_silent_connection_is_closed_and_an_asking_one_answered(
    tmp_path: Path,
) -> None:
    """With idgate's own TLS listener the guard sits behind the handshake: a connection that
    completes it and asks nothing is closed at request_head_timeout (which bounds the handshake
    too, as nginx's client_header_timeout does); one that asks is served."""
    ca = CertificateAuthority.create()
    server_files = ca.issue(common_name="idgate", ips=("127.0.0.1",), server=True)
    cert_file, key_file = server_files.write(tmp_path, "server")
    trusting = ssl.create_default_context(cadata=ca.root.pem.decode())
    # The handshake shares this bound, so it is long enough for handshakes on a loaded machine.
    server = ServerSettings(request_head_timeout_seconds=1.0, keepalive_timeout_seconds=60)
    async with (
        upstream_playing(answering(answer(b"hello"))) as upstream,
        listening(
            upstream.url, server=server, tls=TLSSettings(cert_file=cert_file, key_file=key_file)
        ) as gate,
    ):
        silent_reader, silent_writer = await asyncio.open_connection(
            "127.0.0.1", gate.port, ssl=trusting
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", gate.port, ssl=trusting)
        writer.write(get())
        assert (await read_response(reader))[1] == b"hello"
        assert await until_closed(silent_reader) == b""
        silent_writer.close()
        writer.close()
        assert gate.metric("idgate_request_head_timeouts_total") == 1


# --- upstream side: timeouts --------------------------------------------------------------------


@on_each_loop
async def test_a_small_upstream_body_that_stalls_gets_504_and_none_of_it() -> None:
    """Content-Length 100 (read whole before relaying), 10 bytes, silence: after the upstream's
    body_idle_timeout (0.2 s) the client gets 504 and not one of those bytes."""

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nX-Partial: yes\r\nContent-Length: 100\r\n\r\nsecret-ten")
        await peer.closed_by_idgate()

    upstream_limits = UpstreamSettings(body_idle_timeout_seconds=0.2)
    async with (
        upstream_playing(script) as upstream,
        listening(upstream.url, upstream=upstream_limits) as gate,
    ):
        reader, writer = await gate.connect()
        writer.write(get())
        head, body = await read_response(reader)
        writer.close()
    assert head.startswith(b"HTTP/1.1 504 ")
    assert b"X-Partial" not in head
    assert b"secret-ten" not in body


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 1048576", b"Transfer-Encoding: chunked"],
    ids=["length", "chunked"],
)
@on_each_loop
async def test_a_large_upstream_body_that_stalls_is_cut_off(framing: bytes) -> None:
    """A streamed body that stops after 100 KiB: the client has the 200 and those bytes, then
    its connection is closed short of the end, after body_idle_timeout (0.2 s)."""
    part = b"p" * (100 * 1024)
    chunked = framing.startswith(b"Transfer")

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\n%b\r\n\r\n" % framing)
        peer.send(b"%x\r\n%b\r\n" % (len(part), part) if chunked else part)
        await peer.closed_by_idgate()

    upstream_limits = UpstreamSettings(body_idle_timeout_seconds=0.2)
    async with (
        upstream_playing(script) as upstream,
        listening(upstream.url, upstream=upstream_limits) as gate,
    ):
        reader, writer = await gate.connect()
        writer.write(get())
        received = await until_closed(reader)
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body.count(b"p") == len(part)
    if chunked:
        assert not body.endswith(b"0\r\n\r\n"), "the last chunk must not be made up"
    else:
        assert len(body) < 1048576


# --- the connection cap -------------------------------------------------------------------------


@on_each_loop
async def test_the_connection_past_max_connections_is_closed_at_once_and_counted() -> None:
    """With max_connections 2 and two open, a third is closed unanswered, counted in
    idgate_connections_refused_total; the two keep working."""
    server = ServerSettings(max_connections=2, keepalive_timeout_seconds=60)
    async with (
        upstream_playing(answering(answer(b"hello"))) as upstream,
        listening(upstream.url, server=server) as gate,
    ):
        first = await gate.connect()
        second = await gate.connect()
        for reader, writer in (first, second):
            writer.write(get())
            assert (await read_response(reader))[1] == b"hello"
        assert gate.metric("idgate_connections_open") == 2

        reader, writer = await gate.connect()
        writer.write(get())
        assert await until_closed(reader) == b""
        writer.close()
        assert gate.metric("idgate_connections_refused_total") == 1

        for reader, writer in (first, second):
            writer.write(get())
            assert (await read_response(reader))[1] == b"hello"
            writer.close()
    assert upstream.connections >= 1


# --- head limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        b"".join(b"X-Leak-%d: v\r\n" % number for number in range(5000)),
        b"X-Leak: " + b"L" * (1024 * 1024) + b"\r\n",
    ],
    ids=["5000-fields", "one-1MiB-field"],
)
@on_each_loop
async def test_an_oversized_upstream_head_is_a_502_and_none_of_it_reaches_the_client(
    fields: bytes,
) -> None:
    """Over max_response_headers (100) or max_response_head_bytes (64 KiB): 502, no leaked field."""
    hung_up = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\n%bContent-Length: 2\r\n\r\nok" % fields)
        if await peer.closed_by_idgate():
            hung_up.set()

    async with upstream_playing(script) as upstream, listening(upstream.url) as gate:
        reader, writer = await gate.connect()
        writer.write(get())
        head, body = await read_response(reader)
        writer.close()
        async with asyncio.timeout(BOUND):
            await hung_up.wait()
    assert head.startswith(b"HTTP/1.1 502 ")
    assert b"X-Leak" not in head + body


@on_each_loop
async def test_an_oversized_request_head_is_431_and_nothing_reaches_the_upstream() -> None:
    """40 fields of 2 KB (80 KiB, each within aiohttp's per-field bound) over the 64 KiB total:
    431, and the upstream never sees a connection."""
    fields = [b"X-Pad-%d: %b" % (number, b"p" * 2000) for number in range(40)]
    async with upstream_playing(answering(answer())) as upstream, listening(upstream.url) as gate:
        reader, writer = await gate.connect()
        writer.write(get("/public", *fields))
        head, _ = await read_response(reader)
        writer.close()
    assert head.startswith(b"HTTP/1.1 431 ")
    assert upstream.connections == 0


@on_each_loop
async def test_a_request_head_within_the_total_bound_is_forwarded() -> None:
    """20 fields of 2 KB (40 KiB) are within the 64 KiB total and reach the upstream."""
    fields = [b"X-Pad-%d: %b" % (number, b"p" * 2000) for number in range(20)]
    async with upstream_playing(answering(answer())) as upstream, listening(upstream.url) as gate:
        reader, writer = await gate.connect()
        writer.write(get("/public", *fields))
        head, _ = await read_response(reader)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert upstream.connections == 1
