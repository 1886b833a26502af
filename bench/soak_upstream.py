"""The soak's upstream, one process: the issuer's JWKS, a small JSON answer, a WebSocket echo and
a server-sent event stream (nginx, the benchmark's upstream, speaks neither of the last two).

`python bench/soak_upstream.py PORT JWKS_FILE` (it imports nothing of the repository's).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Final

from aiohttp import WSMsgType, web

SSE_EVENTS: Final = 5


async def _small(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "user": request.headers.get("X-Authenticated-User")})


async def _echo(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        if message.type is WSMsgType.TEXT:
            await socket.send_str(message.data)
    return socket


async def _events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for number in range(SSE_EVENTS):
        await response.write(f"data: {number}\n\n".encode())
        await asyncio.sleep(0.01)
    await response.write_eof()
    return response


def build_app(jwks: bytes) -> web.Application:
    async def keys(_: web.Request) -> web.Response:
        return web.Response(body=jwks, content_type="application/json")

    app = web.Application()
    app.router.add_get("/jwks.json", keys)
    app.router.add_get("/bench/ws", _echo)
    app.router.add_get("/bench/sse", _events)
    app.router.add_route("*", "/{tail:.*}", _small)
    return app


def main() -> None:
    port, jwks_file = int(sys.argv[1]), Path(sys.argv[2])
    web.run_app(
        build_app(jwks_file.read_bytes()),
        host="127.0.0.1",
        port=port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
