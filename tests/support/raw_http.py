"""HTTP/1.1 on one plain connection, one request at a time, for tests that must see the connection:
whether it is kept alive, whether a response says `Connection: close`, when the server closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

from multidict import CIMultiDict

#: Long enough for a loaded machine; a test waiting this long has failed.
READ_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RawResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def closes(self) -> bool:
        """The response says `Connection: close`."""
        return "close" in self.headers.get("Connection", "").lower()


class RawConnection:
    """Requests with a Content-Length-framed answer (idgate's own and relayed small bodies)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, path: str, *, host: str = "idgate.test") -> None:
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        await self._writer.drain()

    async def response(self) -> RawResponse:
        async with asyncio.timeout(READ_TIMEOUT):
            head = (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status_line, *lines = head.removesuffix("\r\n\r\n").split("\r\n")
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines:
                name, _, value = line.partition(":")
                headers.add(name.strip(), value.strip())
            body = await self._reader.readexactly(int(headers["Content-Length"]))
        return RawResponse(status=int(status_line.split(" ")[1]), headers=headers, body=body)

    async def get(self, path: str) -> RawResponse:
        await self.send(path)
        return await self.response()

    async def closed_by_server(self) -> bool:
        """Waits for the server to close the connection; False if it sends anything instead."""
        async with asyncio.timeout(READ_TIMEOUT):
            return await self._reader.read(1) == b""

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):  # the server closed it first
            await self._writer.wait_closed()


async def send_raw(host: str, port: int | None, data: bytes) -> bytes:
    """Write `data` on a new connection; everything the server sends until it closes it."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        async with asyncio.timeout(READ_TIMEOUT):
            return await reader.read()
    finally:
        writer.close()
