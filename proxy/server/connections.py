"""Connection limits aiohttp's server has no setting for: open connections per worker, and a
deadline for a new connection's first request head.

aiohttp's `keepalive_timeout` (set in proxy/server/app.py) closes a connection whose next request
head is not complete that long after the previous response, and is armed when a connection
opens too; but it is one value, so it cannot also be a shorter bound on the first head, and
aiohttp counts no connections. So every connection of the proxy listener passes through a
`_GuardedConnection` around aiohttp's own protocol:

- at `connection_made` (after the TLS handshake, which asyncio bounds by the same
  `request_head_timeout`, as nginx's `client_header_timeout` bounds its handshakes), with
  `server.max_connections` already open the connection is closed at once, unanswered, and
  counted. A 503 would mean reading the request first, which is the cost the cap is there to
  avoid; a load balancer in front retries a closed connection elsewhere.
- otherwise a timer of `server.request_head_timeout` starts; idgate's one request handler
  (proxy/server/app.py) stops it when aiohttp hands it the first request (`head_arrived`). If the
  timer fires first, the connection is closed however many bytes are still trickling in
  (slowloris). A head aiohttp cannot parse gets aiohttp's 400, and aiohttp closes the connection.

`GuardedSockSite` is aiohttp's SockSite with the guard put between the listening socket (bound by
proxy/server/listener.py) and aiohttp's protocol factory: nothing of aiohttp is patched or
subclassed beyond its `BaseSite`, which exists for this.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import socket
import ssl
from collections.abc import Callable
from typing import Final

from aiohttp import web
from yarl import URL

from proxy.config.model import ServerSettings
from proxy.observability.metrics import Metrics

_log = logging.getLogger("idgate.connections")

#: Descriptors beyond two per client connection (its own and its upstream's): listeners, idle
#: upstream connections, log and metric files, the provider client.
_SPARE_DESCRIPTORS: Final = 512
_WARN_EVERY_SECONDS: Final = 60.0


class ConnectionGuard:
    """One per worker (the proxy app's, under CONNECTION_GUARD_KEY): counts open connections
    and times the first request head of each."""

    def __init__(self, settings: ServerSettings, metrics: Metrics) -> None:
        self.max_connections = settings.max_connections
        self.head_seconds = settings.request_head_timeout_seconds
        self._metrics = metrics
        self._open = 0
        self._awaiting_head: dict[asyncio.BaseTransport, asyncio.TimerHandle] = {}
        self._next_warning = -math.inf

    @property
    def open_connections(self) -> int:
        return self._open

    def protocol_factory(
        self, make_protocol: Callable[[], asyncio.Protocol]
    ) -> Callable[[], asyncio.Protocol]:
        """`make_protocol` (aiohttp's `runner.server`) with each connection guarded."""
        return lambda: _GuardedConnection(self, make_protocol())

    def head_arrived(self, transport: asyncio.BaseTransport | None) -> None:
        """The connection's request head is complete: its head deadline no longer applies."""
        if transport is not None and self._awaiting_head:
            timer = self._awaiting_head.pop(transport, None)
            if timer is not None:
                timer.cancel()

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        if self._open >= self.max_connections:
            self._metrics.connections_refused.inc()
            self._warn_refused()
            transport.close()
            return False
        self._open += 1
        self._metrics.connections_open.inc()
        self._awaiting_head[transport] = asyncio.get_running_loop().call_later(
            self.head_seconds, self._head_late, transport
        )
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        self._open -= 1
        self._metrics.connections_open.dec()
        timer = self._awaiting_head.pop(transport, None)
        if timer is not None:
            timer.cancel()

    def _head_late(self, transport: asyncio.BaseTransport) -> None:
        if self._awaiting_head.pop(transport, None) is not None:
            self._metrics.request_head_timeouts.inc()
            transport.close()

    def _warn_refused(self) -> None:
        now = asyncio.get_running_loop().time()
        if now >= self._next_warning:
            self._next_warning = now + _WARN_EVERY_SECONDS
            _log.warning(
                "refusing new connections: %d open, server.max_connections is %d"
                " (counted in idgate_connections_refused_total; warned at most once a minute)",
                self._open,
                self.max_connections,
            )


CONNECTION_GUARD_KEY = web.AppKey[ConnectionGuard]("connection_guard")


class _GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, admitted and released through the guard."""

    __slots__ = ("_admitted", "_guard", "_inner", "_transport")

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._admitted = False
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._guard.admit(transport):
            self._admitted = True
            self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted and self._transport is not None:
            self._admitted = False
            self._guard.release(self._transport)
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSockSite(web.BaseSite):
    """aiohttp's SockSite with the guard put between the listening socket and aiohttp's protocol
    factory; stopped with its runner like any aiohttp site."""

    __slots__ = ("_guard", "_sock")

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard
        self._sock = sock

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        scheme = "https" if self._ssl_context else "http"
        return str(URL.build(scheme=scheme, host=host, port=port))

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        make_room_for(self._guard.max_connections)
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server),
            sock=self._sock,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._guard.head_seconds if self._ssl_context else None,
            backlog=self._backlog,
        )


def make_room_for(connections: int) -> None:
    """Raise the process's open-file limit (its soft value, up to the hard one) so that
    `connections` client connections, each with an upstream one, fit: running out of descriptors
    first would refuse connections silently (accept fails) instead of cleanly."""
    needed = 2 * connections + _SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        target = soft
    if target < needed:
        _log.warning(
            "server.max_connections %d needs about %d open files, but the limit is %d: lower"
            " max_connections or raise the limit (ulimit -n, LimitNOFILE)",
            connections,
            needed,
            target,
        )
