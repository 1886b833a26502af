"""`Expect: 100-continue` through idgate, byte for byte: the body is invited only once allowed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from multidict import CIMultiDict

from tests.support.gate import Gate

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def connection(gate: Gate) -> AsyncIterator[Connection]:
    reader, writer = await asyncio.open_connection(gate.client.host, gate.client.port)
    yield reader, writer
    writer.close()
    await writer.wait_closed()


def upload_head(path: str, length: int, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: idgate.test",
        f"Content-Length: {length}",
        "Content-Type: application/octet-stream",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, CIMultiDict[str], bytes]:
    """The status line, headers and (Content-Length framed) body of the next response."""
    async with asyncio.timeout(5):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers: CIMultiDict[str] = CIMultiDict()
        for line in head[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.add(name, value.strip())
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
    return head[0].encode(), headers, body


async def test_an_anonymous_upload_is_refused_without_being_invited(
    gate: Gate, connection: Connection
) -> None:
    """An anonymous upload announcing a large body gets its 401 with no 100 before it, the
    connection is closed after it, and nothing sent afterwards is read as a request."""
    reader, writer = connection
    writer.write(upload_head("/admin/x", 1_000_000, {"Expect": "100-continue"}))
    status, headers, _ = await read_response(reader)
    assert status.startswith(b"HTTP/1.1 401 "), status
    assert headers["Connection"] == "close"
    writer.write(b"GET /public/x HTTP/1.1\r\nHost: idgate.test\r\n\r\n")
    writer.write_eof()
    async with asyncio.timeout(5):
        assert await reader.read() == b"", "nothing after the refusal is answered"
    assert gate.upstream.calls == 0


async def test_an_allowed_upload_is_invited_then_forwarded(
    gate: Gate, connection: Connection
) -> None:
    """An allowed upload gets 100 Continue only after its headers are authorized, then the
    upstream's answer; the connection stays open for the next request."""
    reader, writer = connection
    headers = {"Expect": "100-continue", **gate.bearer("alice", groups=["admins"])}
    writer.write(upload_head("/admin/x", 5, headers))
    async with asyncio.timeout(5):
        assert await reader.readexactly(len(CONTINUE)) == CONTINUE
    writer.write(b"hello")
    status, answer_headers, body = await read_response(reader)
    assert status.startswith(b"HTTP/1.1 200 "), status
    assert "Connection" not in answer_headers
    assert json.loads(body)["body_length"] == 5
    assert "expect" not in json.loads(body)["headers"], "idgate answered the expectation itself"

    writer.write(b"GET /public/x HTTP/1.1\r\nHost: idgate.test\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status.startswith(b"HTTP/1.1 200 "), status


async def test_an_anonymous_upload_whose_body_arrived_keeps_the_connection(
    gate: Gate, connection: Connection
) -> None:
    """A refused request whose body arrived whole is framed: its connection serves the next one."""
    reader, writer = connection
    writer.write(upload_head("/admin/x", 5, {}) + b"hello")
    status, headers, _ = await read_response(reader)
    assert status.startswith(b"HTTP/1.1 401 "), status
    assert "Connection" not in headers
    writer.write(b"GET /public/x HTTP/1.1\r\nHost: idgate.test\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status.startswith(b"HTTP/1.1 200 "), status


async def test_an_unknown_expectation_is_417(gate: Gate, connection: Connection) -> None:
    """An expectation other than 100-continue is refused with 417 and nothing is forwarded."""
    reader, writer = connection
    headers = {"Expect": "something-else", **gate.bearer("alice", groups=["admins"])}
    writer.write(upload_head("/admin/x", 5, headers) + b"hello")
    status, _, _ = await read_response(reader)
    assert status.startswith(b"HTTP/1.1 417 "), status
    assert gate.upstream.calls == 0


async def test_backchannel_logout_invites_the_body_it_reads(
    gate: Gate, connection: Connection
) -> None:
    """idgate's own endpoint that reads a body sends 100 Continue before reading it."""
    reader, writer = connection
    body = b"logout_token=not-a-token"
    head = upload_head("/oauth2/backchannel_logout", len(body), {"Expect": "100-continue"})
    writer.write(head.replace(b"application/octet-stream", b"application/x-www-form-urlencoded"))
    async with asyncio.timeout(5):
        assert await reader.readexactly(len(CONTINUE)) == CONTINUE
    writer.write(body)
    status, _, _ = await read_response(reader)
    assert status.startswith(b"HTTP/1.1 400 "), status
