"""Draining: from SIGTERM on, what this process still serves, and the signal to let go of it.

One Drain per application (`DRAIN_KEY`). The request path marks each request's start and end on
its connection, a WebSocket tunnel registers for the signal to go away, `/readyz` reads
`draining`, and every response prepared while draining says `Connection: close`. The stop sequence
that drives it (readiness, listener, idle connections, grace, tunnels) is proxy/server/drain.py.

Connections are aiohttp's protocol objects (`request.protocol`), used only as keys: whether one is
busy is known from the requests counted here, never from aiohttp's private state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from aiohttp import web

Connection = Hashable
"""aiohttp's protocol object of one client connection (`request.protocol`)."""


class Drain:
    __slots__ = ("_going_away", "_requests", "_tunnels", "draining")

    def __init__(self) -> None:
        self.draining = False
        """Set once, at SIGTERM: `/readyz` answers 503 and every response closes its connection."""
        self._requests: set[Connection] = set()
        """Connections with a request in progress that is not a tunnel. aiohttp handles a
        connection's requests one after the other, pipelined ones too: one at most each."""
        self._tunnels: dict[Connection, asyncio.Event] = {}
        self._going_away = False

    def begin(self) -> None:
        self.draining = True

    def request_started(self, connection: Connection) -> None:
        self._requests.add(connection)

    def request_ended(self, connection: Connection) -> None:
        self._requests.discard(connection)

    @contextmanager
    def tunnel(self, connection: Connection) -> Iterator[asyncio.Event]:
        """While a request on `connection` is a WebSocket tunnel: an event set when it must go
        away. A tunnel is not a request in flight: it would never finish on its own."""
        going_away = asyncio.Event()
        if self._going_away:
            going_away.set()
        self.request_ended(connection)
        self._tunnels[connection] = going_away
        try:
            yield going_away
        finally:
            del self._tunnels[connection]
            self.request_started(connection)  # the handler's own end balances it

    def close_tunnels(self) -> int:
        """Tell every tunnel, and any opened later, to close with 1001; how many there were."""
        self._going_away = True
        for going_away in self._tunnels.values():
            going_away.set()
        return len(self._tunnels)

    @property
    def requests(self) -> int:
        """Requests in progress, tunnels not counted."""
        return len(self._requests)

    @property
    def tunnels(self) -> int:
        return len(self._tunnels)

    def busy(self, connection: Connection) -> bool:
        """Whether `connection` has a request in progress or is a tunnel."""
        return connection in self._requests or connection in self._tunnels

    def is_tunnel(self, connection: Connection) -> bool:
        return connection in self._tunnels


DRAIN_KEY = web.AppKey[Drain]("drain")
