"""An upstream on 127.0.0.1 that plays a script on each connection: exact bytes, stalls, resets."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

from proxy.upstream import Origin

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding: *chunked", re.IGNORECASE)


class Peer:
    """The upstream's end of one connection; `number` counts connections from 1."""

    def __init__(self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.number = number
        self.reader = reader
        self.writer = writer

    async def request(self) -> bytes:
        """The next request: its head, and its body when it has one."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        if length is not None:
            return head + await self.reader.readexactly(int(length[1]))
        if _CHUNKED.search(head):
            return head + await self.reader.readuntil(b"\r\n0\r\n\r\n")
        return head

    async def requests(self) -> AsyncIterator[bytes]:
        """Each request, until idgate closes the connection."""
        while True:
            try:
                yield await self.request()
            except asyncio.IncompleteReadError as end:
                if end.partial:
                    raise AssertionError("the connection ended inside a request") from end
                return
            except ConnectionResetError:
                return

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def closed_by_idgate(self) -> bool:
        """Whether idgate closes the connection without sending anything more (a reset, as when
        it closes with bytes of ours unread, counts as closing)."""
        try:
            return await self.reader.read() == b""
        except ConnectionResetError:
            return True

    def reset(self) -> None:
        """End the connection with a TCP reset rather than an orderly close."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Script = Callable[[Peer], Awaitable[None]]


class ScriptedUpstream:
    """An upstream on 127.0.0.1 that plays `script` on each connection it accepts, then closes it.

    A script that fails fails the test when the upstream stops.
    """

    def __init__(self, script: Script) -> None:
        self._script = script
        self.peers: list[Peer] = []
        self._serving: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []

    @property
    def connections(self) -> int:
        return len(self.peers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def origin(self) -> Origin:
        return Origin("http", "127.0.0.1", self._port)

    async def __aenter__(self) -> ScriptedUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()
        for task in self._serving:
            task.cancel()
        await asyncio.gather(*self._serving)
        await self._server.wait_closed()
        if self._failures:
            raise self._failures[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        peer = Peer(len(self.peers) + 1, reader, writer)
        self.peers.append(peer)
        try:
            await self._script(peer)
        except asyncio.CancelledError:
            pass  # the test is over
        except Exception as error:  # noqa: BLE001 (reported when the upstream stops)
            self._failures.append(error)
        finally:
            writer.close()
            self._serving.discard(task)


def answer(body: bytes = b"ok", *headers: bytes, status: bytes = b"200 OK") -> bytes:
    """A response with `body`, announced by Content-Length."""
    fields = b"".join(header + b"\r\n" for header in headers)
    return b"HTTP/1.1 %b\r\nContent-Length: %d\r\n%b\r\n%b" % (status, len(body), fields, body)


def answering(*answers: bytes) -> Script:
    """A script that answers the requests on its connection with `answers`, then the last again."""

    async def script(peer: Peer) -> None:
        number = 0
        async for _ in peer.requests():
            peer.send(answers[min(number, len(answers) - 1)])
            number += 1

    return script
