"""Reading a provider's response body without letting the provider choose its memory cost."""

from __future__ import annotations

from typing import Final

import aiohttp

_CHUNK_BYTES: Final = 1 << 14


class ResponseTooLarge(Exception):
    """The body (declared or received) is over the limit; callers translate it at their boundary."""


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise ResponseTooLarge(f"more than {limit} bytes")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"more than {limit} bytes")
    return bytes(body)
