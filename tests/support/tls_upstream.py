"""An HTTPS upstream that requires a client certificate and answers with its serial."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from cryptography import x509

from tests.support.certificates import CertificateAuthority


def _presented(request: web.Request) -> int:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return x509.load_der_x509_certificate(der).serial_number if der else 0


async def _client_serial(request: web.Request) -> web.Response:
    """The serial of the certificate the client presented: which one idgate sent."""
    keep = request.path == "/keep-alive"
    return web.Response(
        text=str(_presented(request)), headers={} if keep else {"Connection": "close"}
    )


async def _websocket_serial(request: web.Request) -> web.WebSocketResponse:
    """A WebSocket that sends the presented serial, then closes."""
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    await socket.send_str(str(_presented(request)))
    await socket.close()
    return socket


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    port: int
    ca: CertificateAuthority
    requests: list[str] = field(default_factory=list)
    """The path of every request that reached it, WebSocket handshakes included."""


@asynccontextmanager
async def https_upstream(
    directory: Path, *, client_ca: CertificateAuthority, uris: tuple[str, ...] = ()
) -> AsyncIterator[Upstream]:
    """An HTTPS upstream on 127.0.0.1 with a certificate of its own CA (for `upstream.internal`
    and 127.0.0.1) that requires a client certificate of `client_ca`."""
    ca = CertificateAuthority.create("upstream CA")
    certificate = ca.issue(
        common_name="upstream.internal", ips=("127.0.0.1",), uris=uris, server=True
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate.write(directory, "upstream"))
    context.load_verify_locations(cadata=client_ca.root.pem.decode("ascii"))
    context.verify_mode = ssl.CERT_REQUIRED
    upstream = Upstream(port=0, ca=ca)

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        upstream.requests.append(request.path)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_get("/ws", _websocket_serial)
    app.router.add_get("/{tail:.*}", _client_serial)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    try:
        yield Upstream(port=runner.addresses[0][1], ca=ca, requests=upstream.requests)
    finally:
        await runner.cleanup()
