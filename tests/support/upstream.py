"""An upstream that answers with what it received, so tests can see exactly what idgate sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pytest_aiohttp import AiohttpServer


@dataclass(kw_only=True)
class EchoUpstream:
    url: str = ""
    received: list[dict[str, object]] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.received)

    def last(self) -> dict[str, object]:
        return self.received[-1]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen: dict[str, object] = {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "header_names": list(request.headers),
            "body_length": len(body),
        }
        self.received.append(seen)
        return web.json_response(seen)


def echo_app(upstream: EchoUpstream) -> web.Application:
    """An application answering every request through `upstream` (a new one per server start)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    return app


async def serve_handler(
    aiohttp_server: AiohttpServer,
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> str:
    """`handle` answering every request on 127.0.0.1, an ephemeral port; its URL. The fixture
    stops it."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = await aiohttp_server(app)
    return f"http://{server.host}:{server.port}"


async def serve_echo(aiohttp_server: AiohttpServer, *, port: int | None = None) -> EchoUpstream:
    """An echo upstream on 127.0.0.1 (`port`, or an ephemeral one); the fixture stops it."""
    upstream = EchoUpstream()
    server = await aiohttp_server(echo_app(upstream), port=port)
    upstream.url = f"http://{server.host}:{server.port}"
    return upstream
