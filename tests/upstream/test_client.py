"""idgate's upstream HTTP/1.1 client, against a scripted upstream that writes exact bytes.

The async tests run twice: on asyncio's own event loop and on uvloop's (tests/support/loops.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from proxy.config.model import UpstreamSettings
from proxy.errors import IdgateError, UpstreamError, UpstreamTimeout
from proxy.upstream import Origin, RequestBody, UpstreamPool, UpstreamResponse, request_head
from proxy.upstream.connection import _HIGH_WATER, ResponseHeadTooLarge, UpstreamConnection
from tests.support.loops import LOOPS, on_each_loop, run_on
from tests.support.scripted_upstream import Peer, ScriptedUpstream, answer, answering

# --- the client's side --------------------------------------------------------------------------


@asynccontextmanager
async def open_pool(**settings: Any) -> AsyncIterator[UpstreamPool]:
    pool = UpstreamPool(**settings)
    try:
        yield pool
    finally:
        await pool.close()


def head_of(method: str = "GET", *headers: tuple[str, str]) -> bytes:
    return request_head(method, "/", "upstream.test", headers)


async def exchange(
    pool: UpstreamPool,
    upstream: ScriptedUpstream,
    method: str = "GET",
    body: RequestBody | None = None,
    *,
    timeout_seconds: float = 5.0,
    limits: UpstreamSettings | None = None,
) -> UpstreamResponse:
    request = head_of(method, ("Content-Length", "4")) if body is not None else head_of(method)
    return await pool.exchange(
        upstream.origin,
        request,
        body,
        timeout_seconds=timeout_seconds,
        limits=limits or UpstreamSettings(),
        head_only=method == "HEAD",
        replayable=body is None and method in {"GET", "HEAD", "PUT", "DELETE"},  # as forward does
    )


async def read_to_end(response: UpstreamResponse) -> bytes:
    parts = []
    while chunk := await response.read(64 * 1024):
        parts.append(chunk)
    return b"".join(parts)


async def fetch(
    pool: UpstreamPool,
    upstream: ScriptedUpstream,
    method: str = "GET",
    *,
    timeout_seconds: float = 5.0,
) -> tuple[UpstreamResponse, bytes]:
    """One whole exchange: the response and its body, read to the end and released."""
    response = await exchange(pool, upstream, method, timeout_seconds=timeout_seconds)
    try:
        return response, await read_to_end(response)
    finally:
        response.release()


def four_bytes() -> RequestBody:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"data"

    return RequestBody(chunks(), chunked=False)


async def eventually(condition: Callable[[], bool], *, within: float = 5.0) -> None:
    """Let the loop run until `condition` holds; fail if it does not within `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (nothing signals these conditions: poll each turn)
            await asyncio.sleep(0)


@contextmanager
def listener_that_never_accepts() -> Iterator[Origin]:
    """A port whose accept queue is full: connecting to it hangs (the kernel drops the SYNs)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):  # fills the queue of one
            yield Origin("http", "127.0.0.1", port)


# --- keep-alive ---------------------------------------------------------------------------------


@on_each_loop
async def test_sequential_requests_share_one_connection() -> None:
    """Keep-alive: one upstream connection carries request after request."""
    async with ScriptedUpstream(answering(answer(b"hello"))) as upstream, open_pool() as pool:
        for _ in range(3):
            response, body = await fetch(pool, upstream)
            assert (response.status, response.reason, body) == (200, "OK", b"hello")
    assert upstream.connections == 1


@on_each_loop
async def test_concurrent_requests_each_get_a_connection_and_all_are_kept() -> None:
    """A burst opens the connections it needs; afterwards they all serve from the pool."""
    both_arrived = asyncio.Barrier(2)

    async def script(peer: Peer) -> None:
        await peer.request()
        await both_arrived.wait()  # so neither request can be answered before the other is sent
        peer.send(answer())
        async for _ in peer.requests():
            peer.send(answer())

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        await asyncio.gather(fetch(pool, upstream), fetch(pool, upstream))
        await asyncio.gather(fetch(pool, upstream), fetch(pool, upstream))
    assert upstream.connections == 2


@on_each_loop
async def test_idle_connections_beyond_the_bound_are_closed() -> None:
    """max_idle_per_origin bounds what the pool keeps, not what a burst may open."""
    both_arrived = asyncio.Barrier(2)
    closed = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        await both_arrived.wait()
        peer.send(answer())
        async for _ in peer.requests():
            peer.send(answer())
        closed.set()

    async with (
        ScriptedUpstream(script) as upstream,
        open_pool(max_idle_per_origin=1) as pool,
    ):
        await asyncio.gather(fetch(pool, upstream), fetch(pool, upstream))
        await closed.wait()
        await fetch(pool, upstream)
    assert upstream.connections == 2


@on_each_loop
async def test_a_body_less_request_meeting_a_connection_closed_by_the_upstream_is_sent_again() -> (
    None
):
    """The keep-alive race: the upstream closed the idle connection as the request went out."""

    async def script(peer: Peer) -> None:
        if peer.number == 1:
            await peer.request()
            peer.send(answer(b"first"))
            await peer.request()  # and closes on reading the second, answering nothing
            return
        await answering(answer(b"second"))(peer)

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        assert (await fetch(pool, upstream))[1] == b"first"
        assert (await fetch(pool, upstream))[1] == b"second"
    assert upstream.connections == 2


@on_each_loop
async def test_a_request_with_a_body_meeting_a_closed_connection_is_a_502_and_never_resent() -> (
    None
):
    """Its body was consumed, so it cannot go again: a 502, and the upstream saw it once."""

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(answer())
        await peer.request()  # the upload; then the upstream closes without answering

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        await fetch(pool, upstream)
        with pytest.raises(UpstreamError) as failure:
            await exchange(pool, upstream, "POST", four_bytes())
        assert not isinstance(failure.value, UpstreamTimeout)
    assert upstream.connections == 1


@on_each_loop
async def test_a_body_less_post_meeting_a_closed_connection_is_a_502_and_never_resent() -> None:
    """The upstream may have acted on it before closing: only idempotent requests go again."""

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(answer())
        await peer.request()  # the POST; then the upstream closes without answering

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        await fetch(pool, upstream)
        with pytest.raises(UpstreamError) as failure:
            await exchange(pool, upstream, "POST")
        assert not isinstance(failure.value, UpstreamTimeout)
    assert upstream.connections == 1


@on_each_loop
async def test_connection_close_from_the_upstream_ends_the_connection() -> None:
    """An answer with `Connection: close` is the connection's last, even if the upstream waits."""
    closed = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(answer(b"bye", b"Connection: close"))
        if await peer.closed_by_idgate():
            closed.set()

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        assert (await fetch(pool, upstream))[1] == b"bye"
        await closed.wait()
        assert (await fetch(pool, upstream))[1] == b"bye"
    assert upstream.connections == 2


@on_each_loop
async def test_idle_connections_older_than_idle_seconds_are_not_reused() -> None:
    """An idle connection past idle_seconds is closed rather than sent a request."""
    closed = asyncio.Event()

    async def script(peer: Peer) -> None:
        await answering(answer())(peer)
        closed.set()

    async with ScriptedUpstream(script) as upstream, open_pool(idle_seconds=0.05) as pool:
        await fetch(pool, upstream)
        loop = asyncio.get_running_loop()
        released = loop.time()
        await eventually(lambda: loop.time() > released + 0.05)
        await fetch(pool, upstream)
        await closed.wait()
    assert upstream.connections == 2


@on_each_loop
async def test_closing_the_pool_closes_its_idle_connections() -> None:
    """Shutting down leaves no connection open at the upstream."""
    closed = asyncio.Event()

    async def script(peer: Peer) -> None:
        await answering(answer())(peer)
        closed.set()

    async with ScriptedUpstream(script) as upstream:
        async with open_pool() as pool:
            await fetch(pool, upstream)
        await closed.wait()


# --- answers ------------------------------------------------------------------------------------


@on_each_loop
async def test_a_head_answer_ends_at_its_headers_and_the_next_request_works() -> None:
    """A HEAD answer announces a length but carries no body: idgate must not wait for one."""

    async def script(peer: Peer) -> None:
        async for request in peer.requests():
            if request.startswith(b"HEAD "):
                peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                peer.send(answer(b"got"))

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response, body = await fetch(pool, upstream, "HEAD", timeout_seconds=1.0)
        assert (response.status, response.content_length, body) == (200, 1234, b"")
        assert (await fetch(pool, upstream, timeout_seconds=1.0))[1] == b"got"


@on_each_loop
async def test_interim_answers_are_skipped_and_the_final_one_is_relayed() -> None:
    """100 Continue and 103 Early Hints come before the answer; the client sees only the answer."""
    interim = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    )
    final = answer(b"final", b"X-Final: yes")

    async def script(peer: Peer) -> None:
        async for _ in peer.requests():
            peer.send(interim)
            await peer.writer.drain()
            peer.send(final)

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        for _ in range(2):
            response, body = await fetch(pool, upstream)
            assert (response.status, response.reason, body) == (200, "OK", b"final")
            assert response.headers["X-Final"] == "yes"
            assert "Link" not in response.headers
    assert upstream.connections == 1


@on_each_loop
async def test_an_empty_reason_is_not_taken_from_the_previous_answer() -> None:
    """Each answer carries its own reason phrase, even when it has none."""
    upstream_script = answering(
        answer(b"", status=b"404 Not Found"), b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"
    )
    async with ScriptedUpstream(upstream_script) as upstream, open_pool() as pool:
        assert (await fetch(pool, upstream))[0].reason == "Not Found"
        response, _ = await fetch(pool, upstream)
        assert (response.status, response.reason) == (200, "")
    assert upstream.connections == 1


@on_each_loop
async def test_a_body_delimited_by_connection_close_is_relayed_whole() -> None:
    """No Content-Length and not chunked: the body is everything until the upstream closes."""

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        for part in (b"first ", b"second ", b"last"):
            peer.send(part)
            await peer.writer.drain()

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response, body = await fetch(pool, upstream)
        assert response.content_length is None
        assert body == b"first second last"


@on_each_loop
async def test_a_close_delimited_body_ended_by_a_reset_is_broken_off_not_complete() -> None:
    """Only an orderly close ends such a body; a reset means the client got part of it."""
    client_has_the_start = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\n\r\nbeginning")
        await client_has_the_start.wait()
        peer.reset()

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream)
        assert await response.read_exactly(len(b"beginning")) == b"beginning"
        client_has_the_start.set()
        with pytest.raises(UpstreamError):
            await read_to_end(response)
        response.release()


@on_each_loop
async def test_a_chunked_body_is_relayed_whole_and_the_connection_kept() -> None:
    """Chunked framing is undone, and the connection serves the next request."""
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
    )
    async with ScriptedUpstream(answering(chunked)) as upstream, open_pool() as pool:
        for _ in range(2):
            response, body = await fetch(pool, upstream)
            assert (response.content_length, body) == (None, b"hello world")
    assert upstream.connections == 1


@on_each_loop
async def test_trailer_fields_never_become_headers_of_the_next_answer() -> None:
    """Trailers end one answer; the next answer on the connection (another user's, maybe) has
    only its own headers."""
    with_trailer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nSet-Cookie: sid=alice\r\nX-Checksum: 1\r\n\r\n"
    )
    async with (
        ScriptedUpstream(answering(with_trailer, answer())) as upstream,
        open_pool() as pool,
    ):
        first, _ = await fetch(pool, upstream)
        second, _ = await fetch(pool, upstream)
    assert "Set-Cookie" not in first.headers
    assert "Set-Cookie" not in second.headers
    assert "X-Checksum" not in second.headers
    assert upstream.connections == 1


@on_each_loop
async def test_a_304_with_a_content_length_has_no_body_to_wait_for() -> None:
    """A 304 may announce the length of the representation it stands for (RFC 9110 8.6); that is
    no body length, and the connection goes on."""
    not_modified = b'HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: "v1"\r\n\r\n'
    async with (
        ScriptedUpstream(answering(not_modified, answer())) as upstream,
        open_pool() as pool,
    ):
        response, body = await fetch(pool, upstream, timeout_seconds=1.0)
        assert (response.status, response.content_length, body) == (304, None, b"")
        assert (await fetch(pool, upstream, timeout_seconds=1.0))[1] == b"ok"
    assert upstream.connections == 1


@on_each_loop
async def test_a_second_answer_to_one_request_ends_the_connection() -> None:
    """Bytes after the answer (here the head of an answer nobody asked for) mean the connection
    has lost track of which answer is whose: it must not carry the next request."""

    async def script(peer: Peer) -> None:
        if peer.number == 1:
            await peer.request()
            peer.send(answer(b"first") + b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        await answering(answer(b"second"))(peer)

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        assert (await fetch(pool, upstream))[1] == b"first"
        assert (await fetch(pool, upstream, timeout_seconds=1.0))[1] == b"second"
    assert upstream.connections == 2


# --- broken answers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nonsense",
    [
        b"HTTQ/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ],
    ids=["protocol", "status", "two-lengths", "unsolicited-101"],
)
@pytest.mark.parametrize("loop", LOOPS)
def test_a_malformed_answer_is_a_502(nonsense: bytes, loop: str) -> None:
    """What llhttp cannot parse, and a protocol switch idgate never asked for, fail as 502."""

    async def scenario() -> None:
        async with ScriptedUpstream(answering(nonsense)) as upstream, open_pool() as pool:
            with pytest.raises(UpstreamError) as failure:
                await exchange(pool, upstream)
            assert not isinstance(failure.value, UpstreamTimeout)

    run_on(loop, scenario())


@on_each_loop
async def test_bad_chunk_framing_breaks_off_the_body() -> None:
    """A chunked body that stops making sense ends in UpstreamError, not in a short success."""
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n"
    async with ScriptedUpstream(answering(bad)) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream)
        with pytest.raises(UpstreamError):
            await read_to_end(response)
        response.release()


@on_each_loop
async def test_a_body_cut_short_fails_and_its_connection_is_not_reused() -> None:
    """Content-Length 100, 10 bytes, then close: read_exactly says so; the next request works."""

    async def script(peer: Peer) -> None:
        if peer.number == 1:
            await peer.request()
            peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            return
        await answering(answer())(peer)

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream)
        with pytest.raises(UpstreamError):
            await response.read_exactly(100)
        response.release()
        assert (await fetch(pool, upstream))[1] == b"ok"
    assert upstream.connections == 2


def _fields(count: int, size: int = 8) -> bytes:
    return b"".join(b"X-Field-%d: %b\r\n" % (number, b"v" * size) for number in range(count))


@on_each_loop
async def test_a_response_with_more_header_fields_than_allowed_is_a_502() -> None:
    """101 fields against max_response_headers 100: ResponseHeadTooLarge, and idgate hangs up."""
    hung_up = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\n%bContent-Length: 2\r\n\r\nok" % _fields(100))
        if await peer.closed_by_idgate():
            hung_up.set()

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        with pytest.raises(ResponseHeadTooLarge):
            await exchange(pool, upstream, limits=UpstreamSettings(max_response_headers=100))
        await hung_up.wait()


@on_each_loop
async def test_a_response_with_as_many_header_fields_as_allowed_is_relayed() -> None:
    """Exactly max_response_headers fields (99 and Content-Length) is within the bound."""
    reply = b"HTTP/1.1 200 OK\r\n%bContent-Length: 2\r\n\r\nok" % _fields(99)
    async with ScriptedUpstream(answering(reply)) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream, limits=UpstreamSettings(max_response_headers=100))
        assert len(response.headers) == 100
        assert await read_to_end(response) == b"ok"
        response.release()


@on_each_loop
async def test_a_response_head_over_the_byte_bound_is_a_502_even_when_its_body_came_with_it() -> (
    None
):
    """A 5 KiB head with its body in one write, against a 4 KiB bound: counted exactly, refused."""
    reply = b"HTTP/1.1 200 OK\r\nX-Big: %b\r\nContent-Length: 2\r\n\r\nok" % (b"b" * 5000)
    async with ScriptedUpstream(answering(reply)) as upstream, open_pool() as pool:
        with pytest.raises(ResponseHeadTooLarge):
            await exchange(pool, upstream, limits=UpstreamSettings(max_response_head_bytes=4096))


@on_each_loop
async def test_a_small_head_arriving_with_a_large_body_is_within_the_byte_bound() -> None:
    """A 100 KiB body written with its head, against a 4 KiB head bound: the body bytes that
    came in the same read are not counted as head."""
    body = b"b" * (100 * 1024)
    async with ScriptedUpstream(answering(answer(body))) as upstream, open_pool() as pool:
        response = await exchange(
            pool, upstream, limits=UpstreamSettings(max_response_head_bytes=4096)
        )
        assert await read_to_end(response) == body
        response.release()


@on_each_loop
async def test_a_response_head_that_never_ends_is_refused_once_past_the_byte_bound() -> None:
    """One header value growing without end: refused when past the bound, not at the deadline,
    so a head that never ends holds at most the bound (plus one read) in memory."""
    hung_up = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        for _ in range(64):
            peer.send(b"e" * 4096)
        if await peer.closed_by_idgate():
            hung_up.set()

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        async with asyncio.timeout(5):  # the exchange's own deadline is 60 s
            with pytest.raises(ResponseHeadTooLarge):
                await exchange(
                    pool,
                    upstream,
                    timeout_seconds=60,
                    limits=UpstreamSettings(max_response_head_bytes=64 * 1024),
                )
            await hung_up.wait()


@on_each_loop
async def test_a_body_that_stalls_fails_the_read_with_a_timeout_and_is_not_reused() -> None:
    """Content-Length 100, 10 bytes, then silence: the read waits body_idle_timeout, no more."""
    hung_up = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        if await peer.closed_by_idgate():
            hung_up.set()

    limits = UpstreamSettings(body_idle_timeout_seconds=0.1)
    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream, timeout_seconds=60, limits=limits)
        async with asyncio.timeout(5):
            assert await response.read(64) == b"0123456789"
            with pytest.raises(UpstreamTimeout):
                await response.read(64)
        response.release()
        await hung_up.wait()


@on_each_loop
async def test_a_body_that_keeps_coming_is_not_cut_by_the_idle_timeout() -> None:
    """Chunks 50 ms apart for longer than body_idle_timeout (200 ms) in all: the body is whole."""

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(8):
            peer.send(b"1\r\nx\r\n")
            await asyncio.sleep(0.05)  # the pace under test, not a synchronisation
        peer.send(b"0\r\n\r\n")
        await peer.closed_by_idgate()

    limits = UpstreamSettings(body_idle_timeout_seconds=0.2)
    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream, limits=limits)
        assert await read_to_end(response) == b"x" * 8
        response.release()


@on_each_loop
async def test_a_response_released_before_its_body_was_read_closes_its_connection() -> None:
    """The rest of an unread body would be taken for the next answer: the connection ends."""
    closed = asyncio.Event()

    async def script(peer: Peer) -> None:
        if peer.number == 1:
            await peer.request()
            peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234")
            if await peer.closed_by_idgate():
                closed.set()
            return
        await answering(answer())(peer)

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream)
        response.release()
        await closed.wait()
        assert (await fetch(pool, upstream))[1] == b"ok"
    assert upstream.connections == 2


# --- unreachable and slow upstreams -------------------------------------------------------------


@on_each_loop
async def test_no_answer_in_time_is_a_504_and_the_connection_is_dropped() -> None:
    """No response head within timeout_seconds: UpstreamTimeout, and idgate hangs up."""
    hung_up = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.request()
        if await peer.closed_by_idgate():
            hung_up.set()

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        with pytest.raises(UpstreamTimeout):
            await exchange(pool, upstream, timeout_seconds=0.05)
        await hung_up.wait()


@on_each_loop
async def test_a_refused_connection_is_a_502() -> None:
    """Nothing listens on the port: UpstreamError straight away, not a timeout."""
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
        origin = Origin("http", "127.0.0.1", closed_port.getsockname()[1])
        async with open_pool() as pool:
            with pytest.raises(UpstreamError) as failure:
                await pool.exchange(origin, head_of(), None, timeout_seconds=5.0)
    assert not isinstance(failure.value, UpstreamTimeout)


@on_each_loop
async def test_a_connection_not_accepted_in_time_is_a_504() -> None:
    """Connecting counts against timeout_seconds too."""
    with listener_that_never_accepts() as origin:
        async with open_pool() as pool:
            with pytest.raises(UpstreamTimeout):
                await pool.exchange(origin, head_of(), None, timeout_seconds=0.05)


@on_each_loop
async def test_an_exchange_cancelled_while_connecting_stops_connecting() -> None:
    """A request given up (client gone, shutdown) leaves no connection attempt behind to finish
    later and hold a connection nobody will use or close."""
    with listener_that_never_accepts() as origin:
        async with open_pool() as pool:
            exchanging = asyncio.ensure_future(
                pool.exchange(origin, head_of(), None, timeout_seconds=60.0)
            )
            await asyncio.sleep(0)  # the exchange starts connecting
            exchanging.cancel()
            with pytest.raises(asyncio.CancelledError):
                await exchanging
            this_test = asyncio.current_task()
            await eventually(lambda: asyncio.all_tasks() == {this_test}, within=2.0)


# --- back-pressure ------------------------------------------------------------------------------


class PausableTransport(asyncio.Transport):
    """A transport that only keeps whether the connection wants it reading: back-pressure step
    by step, with no socket buffers in between."""

    def __init__(self) -> None:
        super().__init__()
        self._reading = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass  # the request head

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        self._reading = True

    def is_reading(self) -> bool:
        return self._reading

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


@on_each_loop
async def test_a_slow_reader_pauses_reading_from_the_upstream_and_bounds_memory() -> None:
    """While the client reads slowly, at most a few hundred KiB wait in idgate per response."""
    connection = UpstreamConnection(on_close=lambda _: None)
    transport = PausableTransport()
    connection.connection_made(transport)
    answered = connection.send(head_of(), head_only=False, release=lambda _: None)
    piece = b"x" * 16 * 1024
    total = 64 * len(piece)  # 1 MiB
    connection.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
    response = await answered

    received = 0
    while transport.is_reading():  # what a transport delivers until it is told to pause
        connection.data_received(piece)
        received += len(piece)
    assert received <= 512 * 1024
    read = 0
    while not transport.is_reading():
        read += len(await response.read(len(piece)))
    assert read < received, "reading resumes before the reader has drained everything"

    while received < total:
        connection.data_received(piece)
        received += len(piece)
    read += len(await read_to_end(response))
    assert read == total
    response.release()


@on_each_loop
async def test_a_body_that_arrived_whole_but_unread_leaves_its_connection_readable() -> None:
    """The body ended in the very bytes that made idgate pause reading, and the client released
    it unread (it went away): the connection returns to the pool and must answer again."""
    size = _HIGH_WATER + 1  # the pause comes with the last byte, whatever the reads' sizes

    async def script(peer: Peer) -> None:
        await peer.request()
        peer.send(answer(b"x" * size))
        await answering(answer(b"next"))(peer)

    async with ScriptedUpstream(script) as upstream, open_pool() as pool:
        response = await exchange(pool, upstream)
        await eventually(lambda: response.complete)
        assert await response.read(1) == b"x"
        response.release()
        assert (await fetch(pool, upstream, timeout_seconds=1.0))[1] == b"next"
    assert upstream.connections == 1


# --- the request head ---------------------------------------------------------------------------


def test_the_request_head_is_one_block_in_order() -> None:
    """Request line, Host, then the headers as given, repeated names kept."""
    assert request_head(
        "GET",
        "/a%2Fb?q=1",
        "app.internal:8080",
        [("Accept", "*/*"), ("X-Two", "1"), ("X-Two", "2")],
    ) == (
        b"GET /a%2Fb?q=1 HTTP/1.1\r\nHost: app.internal:8080\r\n"
        b"Accept: */*\r\nX-Two: 1\r\nX-Two: 2\r\n\r\n"
    )


@pytest.mark.parametrize(
    "headers",
    [
        [("X-User", "alice\r\nX-Authenticated-User: admin")],
        [("X-User", "alice\nX-Authenticated-User: admin")],
        [("X-User", "alice\rX-Authenticated-User: admin")],
        [("X-User\r\nX-Authenticated-User", "admin")],
    ],
)
def test_a_line_break_in_a_header_is_refused(headers: list[tuple[str, str]]) -> None:
    """A CR or LF would let one header smuggle another (or a second request) upstream."""
    with pytest.raises(IdgateError):
        request_head("GET", "/", "app.internal", headers)


def test_a_line_break_in_the_target_is_refused() -> None:
    """The request line cannot be split either."""
    with pytest.raises(IdgateError):
        request_head("GET", "/ HTTP/1.1\r\nHost: elsewhere\r\n\r\nGET /", "app.internal", [])


def test_non_ascii_header_values_go_as_utf8_and_undecodable_bytes_as_they_came() -> None:
    """Text as aiohttp encodes it (UTF-8); bytes aiohttp's server could not decode (it keeps
    them as surrogate escapes) go on as the very bytes the client sent."""
    from_client = b"caf\xe9".decode("utf-8", "surrogateescape")  # Latin-1, not UTF-8
    sent = request_head("GET", "/", "h", [("X-Name", "José"), ("X-Raw", from_client)])
    assert b"X-Name: Jos\xc3\xa9\r\n" in sent
    assert b"X-Raw: caf\xe9\r\n" in sent


def test_a_header_value_that_is_not_text_is_refused_not_trimmed() -> None:
    """A lone surrogate (JSON allows `\\ud800` in a claim) cannot be encoded. aiohttp's writer
    dropped it, so `ad\\ud800min` went out as `admin`; idgate refuses the request instead."""
    with pytest.raises(IdgateError):
        request_head("GET", "/", "h", [("X-Authenticated-User", "ad\ud800min")])
