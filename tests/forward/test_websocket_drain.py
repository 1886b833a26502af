"""WebSocket tunnels when idgate stops: closed with 1001 (going away) at both ends."""

from __future__ import annotations

import asyncio

from aiohttp import WSCloseCode, WSMsgType

from proxy.drain import DRAIN_KEY
from proxy.forward.tunnel import SHUTTING_DOWN
from tests.forward.sockets import SocketUpstream, admin
from tests.support.gate import Gate


async def test_closing_tunnels_sends_1001_to_the_client_and_the_upstream(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """An open tunnel told to go away closes both ends with 1001 and says why; until then it
    relays, and it is counted as a tunnel, not as a request in flight."""
    state = gate.client.app[DRAIN_KEY]
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate)) as ws:
        await ws.send_str("hello")
        assert (await ws.receive()).data == "echo: hello"
        assert (state.tunnels, state.requests) == (1, 0)

        assert state.close_tunnels() == 1

        async with asyncio.timeout(5):
            closing = await ws.receive()
        assert (closing.type, closing.data, closing.extra) == (
            WSMsgType.CLOSE,
            WSCloseCode.GOING_AWAY,
            SHUTTING_DOWN,
        )
    assert await sockets.wait_closed() == WSCloseCode.GOING_AWAY


async def test_a_tunnel_opened_after_tunnels_were_closed_goes_away_at_once(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """A handshake that still arrives once tunnels were told to go away gets its 101 and then
    1001 straight away, so its client reconnects elsewhere."""
    gate.client.app[DRAIN_KEY].close_tunnels()

    async with gate.client.ws_connect("/ws/echo", headers=admin(gate)) as ws:
        async with asyncio.timeout(5):
            closing = await ws.receive()
        assert (closing.type, closing.data) == (WSMsgType.CLOSE, WSCloseCode.GOING_AWAY)
    assert await sockets.wait_closed() == WSCloseCode.GOING_AWAY
