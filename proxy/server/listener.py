"""The proxy's listening sockets, bound here (not by aiohttp) so that closing them drops nothing.

SO_REUSEPORT lets several workers, and during a rolling restart the next idgate, accept on one
port: the kernel spreads new connections over every socket bound to it. Closing one of those
sockets resets the connections the kernel already completed into its accept queue but the
process had not taken yet, which their clients see as a reset request. `close()` therefore takes
whatever is queued, hands it to aiohttp, and closes the socket in the same step; the kernel then
sends new connections to the sockets still open.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Final

from aiohttp import web

from proxy.config.model import ListenAddress
from proxy.server.connections import ConnectionGuard, GuardedSockSite

_log = logging.getLogger("idgate.serve")

_BACKLOG: Final = 1024
#: A TLS handshake on a connection taken from the queue at close; a real client needs far less.
_HANDSHAKE_SECONDS: Final = 5.0


class Listener:
    """The listening sockets of one address and the aiohttp sites serving them."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sockets: list[socket.socket],
        *,
        tls: ssl.SSLContext | None,
        guard: ConnectionGuard,
    ) -> None:
        self._runner = runner
        self._sockets = sockets
        self._tls = tls
        self._guard = guard
        self._sites = [
            GuardedSockSite(runner, guard, sock, ssl_context=tls, backlog=_BACKLOG)
            for sock in sockets
        ]

    @classmethod
    async def bind(
        cls,
        runner: web.BaseRunner,
        listen: ListenAddress,
        *,
        tls: ssl.SSLContext | None,
        guard: ConnectionGuard,
    ) -> Listener:
        """Bound, not yet accepting: `start()` does that. Every connection passes through
        `guard` (proxy/server/connections.py)."""
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(
            listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        sockets: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in dict.fromkeys(found):
                sockets.append(_bound_socket(family, kind, proto, address))
        except OSError:
            for sock in sockets:
                sock.close()
            raise
        return cls(runner, sockets, tls=tls, guard=guard)

    @property
    def ports(self) -> list[int]:
        """The ports bound (`listen.port`, unless that was 0)."""
        return [sock.getsockname()[1] for sock in self._sockets]

    async def start(self) -> None:
        for site in self._sites:
            await site.start()

    async def close(self) -> int:
        """Stop accepting, and serve the connections already queued; how many there were."""
        queued = [connection for sock in self._sockets for connection in _queued(sock)]
        # No await between the last accept and the close: nothing can queue in between.
        for site in self._sites:
            await site.stop()
        for sock in self._sockets:
            sock.close()  # closed (or, by uvloop, detached) already: this only makes sure
        server = self._runner.server
        assert server is not None  # set up before any site started
        factory = self._guard.protocol_factory(server)
        loop = asyncio.get_running_loop()
        for connection in queued:
            try:
                await loop.connect_accepted_socket(
                    factory,
                    connection,
                    ssl=self._tls,
                    ssl_handshake_timeout=None if self._tls is None else _HANDSHAKE_SECONDS,
                )
            except (OSError, TimeoutError) as error:
                _log.warning("a connection queued at close could not be served: %s", error)
                connection.close()
        return len(queued)


def _bound_socket(
    family: socket.AddressFamily, kind: socket.SocketKind, proto: int, address: tuple[object, ...]
) -> socket.socket:
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # As asyncio's create_server: `[::]` means IPv6 only, `0.0.0.0` is its own address.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _queued(sock: socket.socket) -> list[socket.socket]:
    """Every connection waiting in `sock`'s accept queue, taken now."""
    taken: list[socket.socket] = []
    while True:
        try:
            connection, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return taken
        except ConnectionAbortedError:
            continue  # that client is gone already
        except OSError as error:  # out of file descriptors, say: what stays queued is reset
            _log.error("could not take the connections queued at close: %s", error)
            return taken
        connection.setblocking(False)
        taken.append(connection)
