"""Requests pipelined after `Connection: close`: the closing request is answered, nothing after it.

The raw-socket tests run on asyncio's own event loop and on uvloop's (which idgate runs in
production), whose transports hand the server its reads differently; the parser tests run on
both of aiohttp's request parsers (llhttp's and the pure-Python one).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.http import HttpProcessingError
from aiohttp.http_parser import HttpRequestParserC, HttpRequestParserPy

from proxy.server.app import build_app
from proxy.server.pipelining import _StopsAfterClose
from tests.support.loops import on_each_loop
from tests.support.settings import make_settings
from tests.support.upstream import EchoUpstream


async def _listen(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert runner.addresses
    return runner, runner.addresses[0][1]


@asynccontextmanager
async def gate_with_echo() -> AsyncIterator[tuple[int, EchoUpstream]]:
    """idgate (its `/public` route open to anyone) in front of an echo upstream; both ports."""
    upstream = EchoUpstream()
    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", upstream.handle)
    upstream_runner, upstream_port = await _listen(upstream_app)
    upstream.url = f"http://127.0.0.1:{upstream_port}"
    # The issuer is never asked: the public route needs no keys.
    settings = make_settings("http://127.0.0.1:9", upstream.url)
    gate_runner, gate_port = await _listen(build_app(settings))
    try:
        yield gate_port, upstream
    finally:
        await gate_runner.cleanup()
        await upstream_runner.cleanup()


async def exchange(port: int, data: bytes) -> bytes:
    """Everything idgate sends back for `data`, until it closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        async with asyncio.timeout(5):
            return await reader.read(-1)
    finally:
        writer.close()
        await writer.wait_closed()


def split_responses(answer: bytes) -> list[tuple[bytes, bytes]]:
    """(status line + headers, body) of each Content-Length framed response in `answer`."""
    responses = []
    while answer:
        head, _, rest = answer.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        responses.append((head, rest[:length]))
        answer = rest[length:]
    return responses


NEXT = b"GET /public/next HTTP/1.1\r\nHost: idgate.test\r\n\r\n"


@on_each_loop
async def test_a_closing_request_followed_by_another_is_answered_and_the_other_ignored() -> None:
    """A request with `Connection: close` sent in one write with another request gets its own
    answer, with `Connection: close`; the other is never answered nor forwarded."""
    async with gate_with_echo() as (port, upstream):
        answer = await exchange(
            port,
            b"GET /public/first HTTP/1.1\r\nHost: idgate.test\r\nConnection: close\r\n\r\n" + NEXT,
        )
    ((head, body),) = split_responses(answer)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["raw_path"] == "/public/first"
    assert [seen["raw_path"] for seen in upstream.received] == ["/public/first"]


@on_each_loop
async def test_a_closing_upload_followed_by_another_request_is_answered_whole() -> None:
    """A closing request's body is read to its announced end; what follows it is ignored."""
    async with gate_with_echo() as (port, upstream):
        answer = await exchange(
            port,
            b"POST /public/upload HTTP/1.1\r\nHost: idgate.test\r\nConnection: close\r\n"
            b"Content-Length: 9\r\n\r\nGET /x\r\n\r\n" + NEXT,
        )
    ((head, body),) = split_responses(answer)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert json.loads(body)["body_length"] == 9
    assert upstream.calls == 1


@on_each_loop
async def test_an_http_1_0_request_followed_by_another_is_answered_alone() -> None:
    """HTTP/1.0 without keep-alive closes the connection too: its answer comes, nothing else."""
    async with gate_with_echo() as (port, upstream):
        answer = await exchange(
            port, b"GET /public/old HTTP/1.0\r\nHost: idgate.test\r\n\r\n" + NEXT
        )
    ((head, _),) = split_responses(answer)
    assert head.startswith(b"HTTP/1.0 200 "), head
    assert upstream.calls == 1


@on_each_loop
async def test_requests_pipelined_before_the_closing_one_are_all_answered() -> None:
    """Keep-alive requests pipelined ahead of the closing one are answered in order, then the
    connection is closed."""
    async with gate_with_echo() as (port, upstream):
        answer = await exchange(
            port,
            b"GET /public/1 HTTP/1.1\r\nHost: idgate.test\r\n\r\n"
            b"GET /public/2 HTTP/1.1\r\nHost: idgate.test\r\nConnection: close\r\n\r\n" + NEXT,
        )
    bodies = [json.loads(body)["raw_path"] for _, body in split_responses(answer)]
    assert bodies == ["/public/1", "/public/2"]
    assert upstream.calls == 2


@on_each_loop
async def test_a_pipeline_longer_than_the_server_queue_is_answered_whole() -> None:
    """A hundred requests in one write, the last closing, overflow aiohttp's queue of parsed
    requests: parsing pauses and resumes, and every one is answered in order."""
    async with gate_with_echo() as (port, upstream):
        pipeline = b"".join(
            b"GET /public/%d HTTP/1.1\r\nHost: idgate.test\r\n\r\n" % n for n in range(99)
        )
        closing = b"GET /public/99 HTTP/1.1\r\nHost: idgate.test\r\nConnection: close\r\n\r\n"
        answer = await exchange(port, pipeline + closing)
    paths = [json.loads(body)["raw_path"] for _, body in split_responses(answer)]
    assert paths == [f"/public/{n}" for n in range(100)]
    assert upstream.calls == 100


# --- the parser, fed directly ------------------------------------------------------------------

PARSERS = {"llhttp": HttpRequestParserC, "python": HttpRequestParserPy}
CLOSING = b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def parser(kind: str) -> _StopsAfterClose:
    loop = asyncio.get_running_loop()
    return _StopsAfterClose(PARSERS[kind](mock.Mock(), loop, 2**16, max_msg_queue_size=32))


@pytest.mark.parametrize("kind", PARSERS)
async def test_a_closing_request_whose_head_ends_across_two_reads_is_kept(kind: str) -> None:
    """A header block whose final CRLF CRLF is split between two reads still ends the parsing."""
    stops = parser(kind)
    first, _, _ = stops.feed_data(CLOSING[:-2])
    second, _, _ = stops.feed_data(CLOSING[-2:] + NEXT)
    assert [message.path for message, _ in [*first, *second]] == ["/a"]
    assert stops.feed_data(NEXT) == ([], False, b"")


@pytest.mark.parametrize("kind", PARSERS)
async def test_a_closing_request_whose_body_ends_in_a_later_read_is_kept(kind: str) -> None:
    """A closing request's body that continues into a later read is fed whole; bytes after it in
    that read are ignored."""
    stops = parser(kind)
    head = b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 6\r\n\r\nabc"
    ((message, payload),), _, _ = stops.feed_data(head)
    assert message.should_close
    assert stops.feed_data(b"def" + NEXT) == ([], False, b"")
    assert payload.is_eof()
    assert await payload.read() == b"abcdef"


@pytest.mark.parametrize("kind", PARSERS)
async def test_a_malformed_request_after_a_keep_alive_one_is_still_an_error(kind: str) -> None:
    """Only bytes after a complete closing request are ignored: anything else malformed is the
    parser's error, as before."""
    stops = parser(kind)
    with pytest.raises(HttpProcessingError):
        stops.feed_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01 nonsense\r\n\r\n")


@pytest.mark.parametrize("kind", PARSERS)
async def test_a_websocket_upgrade_hands_on_what_follows_it(kind: str) -> None:
    """After an upgrade request the rest of the read is handed on untouched, as the tunnel's."""
    stops = parser(kind)
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    frames = b"\x81\x05hello\r\n\r\nmore"
    messages, upgraded, tail = stops.feed_data(upgrade + frames)
    assert [message.path for message, _ in messages] == ["/ws"]
    assert (upgraded, tail) == (True, frames)


@pytest.mark.parametrize("kind", PARSERS)
async def test_a_long_keep_alive_pipeline_in_one_read_is_parsed_whole(kind: str) -> None:
    """Requests pipelined in one read, with bodies and beyond the split bound, all reach the
    server in order."""
    stops = parser(kind)
    upload = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n\r\n\r\nGET "
    pipeline = b"".join(
        upload if n % 2 else b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(20)
    )
    messages, upgraded, _ = stops.feed_data(pipeline)
    assert [m.path for m, _ in messages] == [f"/{n}" if n % 2 == 0 else "/up" for n in range(20)]
    assert not upgraded
    assert [await p.read() for m, p in messages if m.method == "POST"] == [b"\r\n\r\nGET "] * 10
