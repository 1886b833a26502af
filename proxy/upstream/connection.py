"""One keep-alive HTTP/1.1 connection to an upstream, and the response read from it.

The response is parsed by httptools (llhttp, the parser of Node.js) as bytes arrive: framing
(Content-Length, chunked, read-until-close), keep-alive and malformed input are llhttp's to judge.
Interim 1xx answers (100 Continue, 103 Early Hints) are skipped: idgate relays the final answer.
A 101 is never expected (idgate sends no `Upgrade` on this path; WebSockets have their own
client), so llhttp's upgrade signal counts as a broken response.

Body bytes are queued for the reader and reading from the upstream pauses while more than
`_HIGH_WATER` bytes wait, so a slow client holds at most that much per response in memory.

Limits (`upstream` in the config): a response head over `max_response_head_bytes` or with more
than `max_response_headers` fields breaks the exchange (502) before any of it is handed on; bytes
still arriving without the end of the head are counted as they come, so a head that never ends
costs at most that bound plus one read. A body read that waits `body_idle_timeout_seconds` for
a byte fails with UpstreamTimeout.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final, cast

import httptools
from multidict import CIMultiDict

from proxy.config.model import UpstreamSettings
from proxy.errors import UpstreamError, UpstreamTimeout

_HIGH_WATER: Final = 256 * 1024
_LOW_WATER: Final = 64 * 1024
_NO_BODY_STATUSES: Final = frozenset({204, 304})
#: "HTTP/1.1 200 " and the CRLFs around the head: what the callbacks do not count.
_STATUS_LINE_BYTES: Final = 15
_DEFAULT_LIMITS: Final = UpstreamSettings()


class ResponseHeadTooLarge(UpstreamError):
    """The upstream's response head is over `upstream.max_response_head_bytes` or
    `upstream.max_response_headers`: nothing of it is relayed (nginx: "upstream sent too big
    header", 502)."""


class ClosedBeforeResponse(UpstreamError):
    """The upstream closed the connection before sending a byte of its answer.

    On a connection reused from the pool this is the keep-alive race (the upstream closed an idle
    connection as the request went out): a request without a body may be sent again.
    """


def _decode(raw: bytes) -> str:
    # As aiohttp's server decodes what clients send: bytes that are not UTF-8 survive the trip.
    return raw.decode("utf-8", "surrogateescape")


class UpstreamResponse:
    """An upstream's answer: status and headers at once, the body as it arrives.

    `release()` must be called when done with it: the connection returns to its pool only when the
    body was read to its end, otherwise it is closed.
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_connection",
        "_done",
        "_error",
        "_idle_seconds",
        "_waiter",
        "content_length",
        "headers",
        "reason",
        "status",
    )

    def __init__(
        self,
        connection: UpstreamConnection,
        status: int,
        reason: str,
        headers: CIMultiDict[str],
        content_length: int | None,
        *,
        idle_seconds: float,
    ) -> None:
        self._connection = connection
        self._idle_seconds = idle_seconds
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content_length = content_length
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def complete(self) -> bool:
        """The whole body arrived (it may not all have been read yet)."""
        return self._done

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER:
            self._connection.pause_reading()
        self._wake()

    def finish(self) -> None:
        self._done = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if not self._done:
            self._error = error
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, limit: int) -> bytes:
        """At most `limit` bytes of what has arrived, waiting only when nothing has; b"" at the end.

        Raises UpstreamError when the upstream breaks off the body, UpstreamTimeout when no byte
        of it arrives for `idle_seconds`.
        """
        while not self._chunks:
            if self._error is not None:
                raise UpstreamError("upstream broke off the response body") from self._error
            if self._done:
                return b""
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            # A timer only while waiting: reads of bytes already queued cost nothing extra.
            timer = loop.call_later(self._idle_seconds, _stalled, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        chunk = self._chunks.popleft()
        if len(chunk) > limit:
            self._chunks.appendleft(chunk[limit:])
            chunk = chunk[:limit]
        self._buffered -= len(chunk)
        if self._buffered < _LOW_WATER:
            self._connection.resume_reading()
        return chunk

    async def read_exactly(self, length: int) -> bytes:
        """The next `length` bytes; UpstreamError when the body ends or breaks off before them."""
        parts: list[bytes] = []
        missing = length
        while missing:
            chunk = await self.read(missing)
            if not chunk:
                raise UpstreamError("upstream response body shorter than its Content-Length")
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)

    def release(self) -> None:
        self._connection.finish_exchange(self)


def _stalled(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout("upstream response body stalled"))


class UpstreamConnection(asyncio.Protocol):
    """The protocol of one upstream connection: one request and its response at a time."""

    def __init__(self, on_close: Callable[[UpstreamConnection], None]) -> None:
        self._on_close = on_close
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.reusable = True
        """False once the connection must not carry another request."""
        self.idle_since = 0.0
        self._release: Callable[[UpstreamConnection], None] | None = None
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._response: UpstreamResponse | None = None
        self._reason = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._limits = _DEFAULT_LIMITS
        self._head_bytes = 0
        """Bytes received while the head was awaited (interim answers' included): an upper
        bound on the head's size."""
        self._head_only = False
        self._interim = False
        self._answered = False
        self._reading_paused = False
        self._writing_paused = False
        self._drained: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._head is None and self._response is None:
            # Bytes nobody asked for (a 408 on an idle connection, or junk): never a later answer.
            self.close()
            return
        self._answered = True
        awaiting_head = self._head is not None
        if awaiting_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            # A callback's own refusal (head too large) is the parser error's context.
            refusal = error.__context__
            if not isinstance(refusal, UpstreamError):
                refusal = UpstreamError("invalid upstream response")
            self._break(refusal, error)
            return
        if (
            awaiting_head
            and self._head is not None
            and self._head_bytes > self._limits.max_response_head_bytes
        ):
            # Everything received so far is head, and the head has not ended yet.
            self._break(ResponseHeadTooLarge("upstream response head too large"), None)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost settles what was in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        head = self._head
        if head is not None and not head.done():
            failure = (
                UpstreamError("upstream closed the connection")
                if self._answered
                else ClosedBeforeResponse("upstream closed the connection before answering")
            )
            failure.__cause__ = exc
            head.set_exception(failure)
        response = self._response
        if response is not None and not response.complete:
            if exc is None and self._until_close(response):  # a reset breaks such a body off
                response.finish()
            else:
                response.fail(exc or ConnectionResetError("upstream closed the connection"))
        drained = self._drained
        if drained is not None and not drained.done():
            drained.set_exception(ConnectionResetError("upstream closed the connection"))
        self._on_close(self)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained = self._drained
        if drained is not None and not drained.done():
            drained.set_result(None)

    # httptools callbacks

    def on_status(self, status: bytes) -> None:
        self._reason = status

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self._raw_headers) >= self._limits.max_response_headers:
            raise ResponseHeadTooLarge("upstream response has too many header fields")
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        head = self._head
        if head is None:
            # A second answer to one request: which answer is whose can no longer be told, so
            # the connection is broken (a parser callback error ends feed_data at once).
            raise UpstreamError("upstream sent an answer nobody asked for")
        status = self._parser.get_status_code()
        raw_headers, self._raw_headers = self._raw_headers, []
        reason, self._reason = self._reason, b""  # no on_status for an answer without one
        limit = self._limits.max_response_head_bytes
        if self._head_bytes > limit:
            # What arrived since the request was sent may hold body bytes (or interim answers)
            # too, so only counting this head tells. Each field is `name: value` and CRLF.
            size = _STATUS_LINE_BYTES + len(reason)
            size += sum(len(name) + len(value) + 4 for name, value in raw_headers)
            if size > limit:
                raise ResponseHeadTooLarge("upstream response head too large")
        if status < 200:
            self._interim = True  # llhttp ends it as a message of its own; the answer follows
            return
        headers = CIMultiDict((_decode(name), _decode(value)) for name, value in raw_headers)
        response = UpstreamResponse(
            self,
            status,
            _decode(reason),
            headers,
            _content_length(status, headers),
            idle_seconds=self._limits.body_idle_timeout_seconds,
        )
        self._response = response
        self._head = None
        if not head.done():
            head.set_result(response)
        if self._head_only:
            # llhttp cannot be told that a HEAD answer has no body, so it would wait for
            # Content-Length bytes that never come: the answer ends here, with its connection.
            self.reusable = False
            response.finish()

    def on_body(self, body: bytes) -> None:
        if self._response is not None and not self._head_only:
            self._response.feed(body)

    def on_message_complete(self) -> None:
        if self._raw_headers:  # trailer fields: not relayed, and never the next answer's headers
            self._raw_headers = []
        if self._interim:
            self._interim = False
            return
        if not self._parser.should_keep_alive():
            self.reusable = False
        if self._response is not None:
            self._response.finish()

    # the exchange

    def send(
        self,
        head: bytes,
        *,
        head_only: bool,
        release: Callable[[UpstreamConnection], None],
        limits: UpstreamSettings = _DEFAULT_LIMITS,
    ) -> asyncio.Future[UpstreamResponse]:
        """Write a request head; the returned future gets the response once its head arrives."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._head = loop.create_future()
        self._limits = limits
        self._head_bytes = 0
        self._head_only = head_only
        self._answered = False
        self._release = release
        self.transport.write(head)
        return self._head

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if self._writing_paused:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None

    def pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()

    def abandon(self) -> None:
        """The exchange ended early (timeout, client gone, body unread): the connection is done."""
        self.reusable = False
        head = self._head
        if head is not None and not head.done():
            head.cancel()
        self.close()

    def finish_exchange(self, response: UpstreamResponse) -> None:
        if not response.complete:
            self.reusable = False
        elif self._reading_paused:
            self.resume_reading()  # the body's pause must not outlast it, read or not
        self._response = None
        self._head = None
        release, self._release = self._release, None
        if release is not None:
            release(self)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _break(self, error: UpstreamError, cause: BaseException | None) -> None:
        error.__cause__ = cause
        head = self._head
        if head is not None and not head.done():
            head.set_exception(error)
        if self._response is not None:
            self._response.fail(error)
        self.close()

    def _until_close(self, response: UpstreamResponse) -> bool:
        """RFC 9112 6.3: a response with neither Content-Length nor chunked coding ends when the
        connection closes (responses that never have a body are complete at their head)."""
        return (
            response.content_length is None
            and response.status not in _NO_BODY_STATUSES
            and "chunked" not in response.headers.get("Transfer-Encoding", "").lower()
        )


def _content_length(status: int, headers: CIMultiDict[str]) -> int | None:
    """The body's length if announced. A 304's Content-Length is its representation's (RFC 9110
    8.6), and neither a 204 nor a 304 has a body, whatever it says."""
    value = headers.get("Content-Length")
    if value is None or "Transfer-Encoding" in headers or status in _NO_BODY_STATUSES:
        return None
    return int(value)  # llhttp has already refused a malformed or conflicting Content-Length
