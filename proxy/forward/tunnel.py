"""A WebSocket tunnel: messages relayed both ways until one side closes or the identity ends.

idgate is the server of the client's WebSocket and the client of the upstream's, and passes on
everything either end sends: text and binary messages, pings and pongs (the far end answers them,
not idgate) and the closing handshake with its code and reason. Whichever end goes away without
closing, the other is closed with 1001 (going away).

The identity that opened the tunnel is held to it: when its `expires_at` passes, or when a
periodic re-check (sessions) finds it no longer valid, both ends are closed with 1008 (policy
violation), which RFC 6455 7.4.1 defines as "an endpoint is terminating the connection because it
has received a message that violates its policy".

When idgate stops (proxy/server/drain.py), both ends are closed with 1001, "an endpoint is
"going away", such as a server going down" (RFC 6455 7.4.1), so the client reconnects elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from proxy.stages.watch import IdentityWatch

_log = logging.getLogger("idgate.tunnel")

SHUTTING_DOWN: Final = "server shutting down"

Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def run_tunnel(
    client: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    *,
    watch: IdentityWatch | None,
    going_away: asyncio.Event | None = None,
) -> str | None:
    """Relay between two open WebSockets until both are closed, or `going_away` is set.

    Returns why idgate ended the tunnel (the identity, or SHUTTING_DOWN), or None when one of
    the ends closed it.
    """
    loop = asyncio.get_running_loop()
    pumps = {loop.create_task(_pump(client, upstream)), loop.create_task(_pump(upstream, client))}
    # What idgate ends a tunnel for, each with the close code it sends both ends.
    enders: dict[asyncio.Task[str], WSCloseCode] = {}
    if watch is not None:
        enders[loop.create_task(watch.ended())] = WSCloseCode.POLICY_VIOLATION
    if going_away is not None:
        enders[loop.create_task(_shutting_down(going_away))] = WSCloseCode.GOING_AWAY
    reason: str | None = None
    try:
        done, _ = await asyncio.wait({*pumps, *enders}, return_when=asyncio.FIRST_COMPLETED)
        ender = next((task for task in enders if task in done), None)
        if ender is not None:
            reason = ender.result()
            message = reason.encode()
            await asyncio.gather(
                client.close(code=enders[ender], message=message),
                upstream.close(code=enders[ender], message=message),
            )
        # Each pump ends once its source is closed, and closes its sink when its source broke.
        await asyncio.wait(pumps)
        for pump in pumps:
            if (error := pump.exception()) is not None:
                _log.error("websocket relay failed", exc_info=error)
    finally:
        for task in (*pumps, *enders):
            task.cancel()
    return reason


async def _shutting_down(going_away: asyncio.Event) -> str:
    await going_away.wait()
    return SHUTTING_DOWN


async def _pump(source: Socket, sink: Socket) -> None:
    """Relay `source`'s messages to `sink` until `source` closes."""
    while True:
        message = await source.receive()
        try:
            match message.type:
                case WSMsgType.TEXT:
                    await sink.send_str(message.data)
                case WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                case WSMsgType.PING:
                    await sink.ping(message.data)
                case WSMsgType.PONG:
                    await sink.pong(message.data)
                case WSMsgType.CLOSE:
                    await _pass_close(source, sink, message.data, message.extra or "")
                    return
                case WSMsgType.CLOSING:
                    return  # the other pump or the watcher is closing `source` right now
                case _:  # CLOSED or ERROR: `source` is gone, without a closing handshake
                    await sink.close(code=WSCloseCode.GOING_AWAY)
                    return
        except ConnectionError:
            await source.close(code=WSCloseCode.GOING_AWAY)
            return


async def _pass_close(source: Socket, sink: Socket, code: int, reason: str) -> None:
    # A Close frame without a code arrives as 0, which must not be sent on (RFC 6455 7.4.2).
    code = code or WSCloseCode.OK
    await sink.close(code=code, message=reason.encode())
    # RFC 6455 5.5.1: "When sending a Close frame in response, the endpoint typically echos the
    # status code it received."
    await source.close(code=code)
