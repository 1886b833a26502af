"""A WebSocket upstream for tests, the routes in front of it, and an admin's credentials."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

from proxy.config.model import Policy, Route, Rule
from tests.support.gate import Gate
from tests.support.upstream import serve_handler

LISTED_ORIGIN = "https://tools.example.com"


@dataclass(kw_only=True)
class SocketUpstream:
    url: str = ""
    requests: list[CIMultiDict[str]] = field(default_factory=list)
    """Headers of every request that reached the upstream, handshakes included."""
    close_codes: list[int | None] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(CIMultiDict(request.headers))
        if request.path.endswith("/refuse"):
            return web.Response(status=403, text="no sockets here", headers={"X-Why": "refused"})
        if request.path.endswith("/moved"):
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.json_response({"user": request.headers.get("X-Authenticated-User")})
        ws = web.WebSocketResponse(protocols=("chat.v2",))
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT and message.data == "close please":
                await ws.close(code=4001, message=b"done")
            elif message.type is WSMsgType.TEXT:
                await ws.send_str(f"echo: {message.data}")
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        self.close_codes.append(ws.close_code)
        self.closed.set()
        return ws

    def handshakes(self) -> list[CIMultiDict[str]]:
        return [headers for headers in self.requests if "Sec-WebSocket-Key" in headers]

    async def wait_closed(self) -> int | None:
        async with asyncio.timeout(5):
            await self.closed.wait()
        return self.close_codes[-1]


async def serve_sockets(aiohttp_server: AiohttpServer) -> SocketUpstream:
    """A WebSocket echo upstream on 127.0.0.1, an ephemeral port; the fixture stops it."""
    sockets = SocketUpstream()
    sockets.url = await serve_handler(aiohttp_server, sockets.handle)
    return sockets


def socket_routes(upstream: str) -> tuple[Route, ...]:
    admins = Policy(
        allow=Rule(groups=frozenset({"admins"})), deny=Rule(users=frozenset({"mallory"}))
    )
    return (
        Route(
            name="sockets",
            path="/ws",
            upstream=upstream,
            allowed_origins=frozenset({LISTED_ORIGIN}),
            policy=admins,
        ),
        Route(
            name="api",
            path="/api",
            upstream=upstream,
            policy=Policy(allow=Rule(authenticated=True)),
        ),
    )


def admin(gate: Gate, **claims: object) -> dict[str, str]:
    return gate.bearer("alice", groups=["admins"], **claims)
