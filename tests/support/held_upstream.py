"""An upstream that holds `/held` requests until the test releases them, and answers others at once,
so a test knows exactly which requests are in flight when it stops idgate."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.support.upstream import serve_handler


@dataclass(kw_only=True)
class HeldUpstream:
    url: str = ""
    held: int = 0
    """`/held` requests that have arrived."""
    released: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        if request.path.endswith("/held"):
            async with self._arrived:
                self.held += 1
                self._arrived.notify_all()
            await self.released.wait()
        return web.json_response({"path": request.path})

    async def wait_held(self, count: int) -> None:
        """Until `count` `/held` requests have arrived."""
        async with asyncio.timeout(10), self._arrived:
            await self._arrived.wait_for(lambda: self.held >= count)

    def release(self) -> None:
        self.released.set()


async def serve_held(aiohttp_server: AiohttpServer) -> HeldUpstream:
    """A held upstream on 127.0.0.1; the fixture stops it."""
    upstream = HeldUpstream()
    upstream.url = await serve_handler(aiohttp_server, upstream.handle)
    return upstream
