"""The bytes of an HTTP/1.1 request head, as idgate sends it to an upstream."""

from __future__ import annotations

from collections.abc import Iterable

from proxy.errors import IdgateError


def request_head(method: str, target: str, host: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """`method target HTTP/1.1`, `Host`, then `headers` in order; encoded as aiohttp encodes them.

    Every name and value must be free of CR and LF. What idgate received was parsed by aiohttp,
    which refuses them, and identity headers are cleaned of control characters; the count below
    makes sure nothing slipped through to split the head (a request smuggled upstream).
    """
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    lines.append("\r\n")
    text = "".join(lines)
    line_breaks = len(lines) + 1  # the first entry holds two lines
    if text.count("\n") != line_breaks or text.count("\r") != line_breaks:
        raise IdgateError("refusing to send a header with a line break upstream")
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A lone surrogate (JSON lets a claim hold one). aiohttp's writer dropped it, turning
        # `ad\ud800min` into `admin`: refuse rather than send a value other than the one checked.
        raise IdgateError("refusing to send a header that is not text upstream") from None
