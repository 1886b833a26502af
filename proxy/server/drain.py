"""The stop sequence of one serving process, from SIGTERM to exit, dropping no request.

1. Not ready: `/readyz` answers 503 at once, and every response from then on says
   `Connection: close` (proxy/drain.py, proxy/server/app.py).
2. `drain.delay` (default none): the listener keeps accepting, so a load balancer that only
   probes readiness stops sending first. In Kubernetes the Deployment's `preStop` pause plays this
   part: a terminating pod leaves its Service's endpoints at once, and SIGTERM comes after the
   pause, by when the endpoint update has spread.
3. Stop accepting: the listening sockets close, and connections already queued on them are served
   (proxy/server/listener.py); new connections go to the other processes on the port, or are
   refused.
4. For up to `drain.grace`: requests in flight finish, each closing its connection after its
   response. A connection with nothing in flight for IDLE_SECONDS is closed, so its client
   reconnects elsewhere; never sooner, so a request already on its way over a kept-alive
   connection still gets its answer.
5. WebSocket tunnels are closed with 1001 (going away), then aiohttp's shutdown: it waits up to
   CLOSING_SECONDS for the handlers left (the tunnels' closing handshakes, any request the grace
   cut), cancels them, and waits up to CLOSING_SECONDS again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from proxy.config.model import DrainSettings
from proxy.drain import Connection, Drain
from proxy.server.listener import Listener

_log = logging.getLogger("idgate.serve")

#: How long a connection with nothing in flight stays open during a drain. A client sending a
#: request just as it closes sees it closed, as it would at any keep-alive timeout; a shorter
#: time makes that likelier, a longer one keeps clients on a process that is going away.
IDLE_SECONDS: Final = 1.0
#: aiohttp's shutdown timeout: how long handlers left after the grace get, twice (see above).
CLOSING_SECONDS: Final = 3.0
#: How often the connections are looked at while requests finish.
_POLL_SECONDS: Final = 0.05


def longest_drain(settings: DrainSettings) -> float:
    """The most seconds from SIGTERM to the end of the drain."""
    return settings.delay_seconds + settings.grace_seconds + 2 * CLOSING_SECONDS


@dataclass(frozen=True, slots=True, kw_only=True)
class Drained:
    """What a drain had to do, for its closing log line."""

    in_flight: int
    """Requests in flight at SIGTERM."""
    queued: int
    """Connections taken from the accept queue when the listener closed."""
    cut: int
    """Requests still in flight when the grace ended."""
    tunnels: int
    """WebSocket tunnels closed with 1001."""


async def drain(
    state: Drain, listener: Listener, server: web.Server, settings: DrainSettings
) -> Drained:
    """Steps 1 to 4, and the 1001s of step 5; the caller's `runner.cleanup()` does the rest."""
    state.begin()
    in_flight = state.requests
    _log.info(
        "draining (pid %d): /readyz is 503; %d requests in flight, %d websocket tunnels",
        os.getpid(),
        in_flight,
        state.tunnels,
    )
    if settings.delay_seconds:
        await asyncio.sleep(settings.delay_seconds)
    queued = await listener.close()
    _log.info("stopped accepting connections (%d queued ones are served)", queued)
    deadline = asyncio.get_running_loop().time() + settings.grace_seconds
    cut = await _finish_requests(state, server, deadline=deadline)
    if cut:
        _log.warning("%d requests still in flight at the end of the grace are cut", cut)
    tunnels = state.close_tunnels()
    return Drained(in_flight=in_flight, queued=queued, cut=cut, tunnels=tunnels)


async def _finish_requests(state: Drain, server: web.Server, *, deadline: float) -> int:
    """Until no request is in flight and only tunnels are connected, or `deadline`; closes each
    connection idle for IDLE_SECONDS. Returns how many requests are still in flight."""
    loop = asyncio.get_running_loop()
    idle_since: dict[Connection, float] = {}
    while True:
        now = loop.time()
        connections = [each for each in server.connections if not state.is_tunnel(each)]
        if not connections and not state.requests:
            return 0
        if now >= deadline:
            return state.requests
        # Idle at every look for IDLE_SECONDS, a connection carried no request in that time, or
        # one that has ended, and then closed the connection itself: from SIGTERM on, every
        # response says `Connection: close`.
        still_idle: dict[Connection, float] = {}
        for connection in connections:
            if state.busy(connection):
                continue
            since = still_idle[connection] = idle_since.get(connection, now)
            if now - since >= IDLE_SECONDS:
                connection.force_close()
        idle_since = still_idle
        # Polled: aiohttp tells no one when a connection goes idle or away.
        await asyncio.sleep(min(_POLL_SECONDS, deadline - now))
