"""A request with `Connection: close` is answered; whatever the client pipelined after it is not.

RFC 9112 9.6: "A server that receives a "close" connection option MUST initiate closure of the
connection (see below) after it sends the final response to the request that contained the
"close" connection option. [...] The server MUST NOT process any further requests received on
that connection." aiohttp's request parser (llhttp, and its pure-Python twin alike) meets the last
sentence by raising "Data after `Connection: close`" for any byte after such a request; when those
bytes arrive in the same read as the request itself, the request it had already parsed is lost
with the error, and the client gets `400` instead of its answer. nginx answers the request and
closes the connection.

`stop_parsing_after_close` wraps each connection's request parser so that the bytes of one read
reach it split after each header block: a request that asks for the connection to be closed
(`Connection: close`, or HTTP/1.0 without keep-alive) is thus parsed and handed on before any
later byte is looked at. Once that request (with its body) is complete, everything else the
client sends is ignored, and aiohttp closes the connection after the answer, as it already does
for such a request. Splitting a read changes nothing else: the parser is a stream parser and
keeps its state between reads, which TCP splits anywhere anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from aiohttp import web_protocol
from aiohttp.http import HttpProcessingError, HttpRequestParser

_HEAD_END: Final = b"\r\n\r\n"
#: A read holding more requests than this is fed to the parser whole from there on, so that a
#: flood of pipelined requests stays within aiohttp's own queue bound (its parser stops emitting
#: at 32 queued requests): a `Connection: close` that deep in a pipeline gets aiohttp's 400.
_SPLIT_REQUESTS: Final = 8

_Parsed = tuple[list[tuple[Any, Any]], bool, bytes]


class _StopsAfterClose:
    """One connection's request parser, fed so that a closing request is never lost."""

    __slots__ = ("_body_left", "_closing", "_done", "_inner", "_recent")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        #: The body of the request that asked for the connection to be closed, once parsed.
        self._closing: Any = None
        #: That request is complete: nothing after it is parsed.
        self._done = False
        #: The last bytes fed, so a header block ending across two reads is still found.
        self._recent = b""
        #: Bytes of a Content-Length body still to come: fed without looking for header blocks.
        self._body_left = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def feed_data(self, data: bytes) -> _Parsed:
        if self._done:
            return [], False, b""
        if self._closing is None and not self._body_left and data[:1] not in b"\r\n":
            head_end = data.find(_HEAD_END)
            if head_end < 0 or head_end == len(data) - len(_HEAD_END):
                # The common read: at most one header block, ending it, so no byte can follow a
                # closing request here; fed whole without the piece-by-piece loop's cost. (A
                # read starting with CR or LF may end a header block begun in the last read.)
                self._recent = data[-3:]
                parsed, upgraded, tail = self._inner.feed_data(data)
                if len(parsed) == 1 and not parsed[0][0].should_close:
                    self._body_left = _content_length(parsed[0][0])
                    return parsed, upgraded, tail
                if not parsed:
                    return parsed, upgraded, tail
                messages: list[tuple[Any, Any]] = []
                self._take(parsed, messages, after_head=True)
                self._closing_request_complete()
                return messages, upgraded, tail
        return self._feed_pieces(data)

    def _feed_pieces(self, data: bytes) -> _Parsed:
        recent = self._recent
        self._recent = data[-3:] if len(data) >= 3 else (recent + data)[-3:]
        messages: list[tuple[Any, Any]] = []
        start = 0
        # Even b"" reaches the parser: aiohttp feeds it to resume parsing what the parser kept
        # back when its queue was full.
        while True:
            split = self._closing is None and len(messages) < _SPLIT_REQUESTS
            end = self._piece_end(data, start, recent) if split else len(data)
            recent = b""
            piece, start = data[start:end], end
            self._body_left = max(0, self._body_left - len(piece))
            try:
                parsed, upgraded, tail = self._inner.feed_data(piece)
            except HttpProcessingError:
                if self._closing_request_complete():
                    return messages, False, b""
                raise
            self._take(parsed, messages, after_head=split)
            if upgraded:
                return messages, True, tail + data[start:]
            if self._closing_request_complete() or start == len(data):
                return messages, False, b""

    def _take(
        self, parsed: list[tuple[Any, Any]], messages: list[tuple[Any, Any]], *, after_head: bool
    ) -> None:
        """Add to `messages` the requests in `parsed` up to a closing one; note where a request
        whose header block ended the piece (`after_head`) has its body."""
        for message, payload in parsed:
            # The pure-Python parser forgets the closing request between reads and goes on
            # parsing: a request after it is never handed on.
            if self._closing is not None:
                return
            messages.append((message, payload))
            if message.should_close:
                self._closing = payload
            elif after_head:
                self._body_left = _content_length(message)

    def _piece_end(self, data: bytes, start: int, recent: bytes) -> int:
        """Where the piece of `data` from `start` ends: after a header block, or a known body."""
        if self._body_left:
            return min(len(data), start + self._body_left)
        return _after_head(data, start, recent)

    def _closing_request_complete(self) -> bool:
        if self._closing is not None and self._closing.is_eof():
            self._done = True
        return self._done


def _content_length(message: Any) -> int:
    """The body length a request announced (the parser has refused anything malformed), or 0
    for none or a chunked one, whose header blocks are looked for in its body."""
    value = message.headers.get("Content-Length", "")
    return int(value) if not message.chunked and value.isdigit() else 0


def _after_head(data: bytes, start: int, recent: bytes) -> int:
    """Where the first header block ending at or after `start` ends (`recent`: the bytes fed
    just before `data`, in which that ending may have begun), or the end of `data`."""
    if recent:
        found = (recent + data[:3]).find(_HEAD_END)
        if found >= 0:
            return found + len(_HEAD_END) - len(recent)
    found = data.find(_HEAD_END, start)
    return len(data) if found < 0 else found + len(_HEAD_END)


_installed: Callable[..., Any] | None = None


def stop_parsing_after_close() -> None:
    """Wrap the request parser of every aiohttp server connection made from now on (idempotent).

    aiohttp offers no per-application hook for its parser: its connection class looks the parser
    up by name in its module, so that name is what is replaced.
    """
    global _installed  # noqa: PLW0603 (one installation per process)
    if _installed is not None:
        return
    parser_class = HttpRequestParser  # the class aiohttp chose: llhttp's, or the Python one

    def parser(*args: Any, **kwargs: Any) -> _StopsAfterClose:
        return _StopsAfterClose(parser_class(*args, **kwargs))

    _installed = parser
    setattr(web_protocol, "HttpRequestParser", parser)  # noqa: B010 (mypy: a class by type)
