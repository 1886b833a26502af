"""WebSockets through idgate: authorization, Origin, the 101 rule, and how long a tunnel lives."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.config.model import (
    Policy,
    Rule,
    Secret,
    ServerSettings,
    SessionSettings,
    Settings,
    StepUp,
)
from proxy.forward.headers import is_websocket_upgrade, websocket_subprotocols
from proxy.runtime import RUNTIME_KEY, build_runtime
from proxy.server.app import METRICS_KEY, PROVIDER_CLIENT_KEY
from proxy.sessions.revocations import RevocationKind
from proxy.stages.origin import origin_allowed
from proxy.stages.watch import EXPIRED, REVOKED, IdentityWatch
from tests.forward.sockets import LISTED_ORIGIN, SocketUpstream, admin, socket_routes
from tests.support.gate import Gate, StartGate
from tests.support.issuer import FakeIssuer, SigningKey
from tests.support.settings import SESSION_SECRET
from tests.support.signed_in import cookie_header, sign_in

#: A valid client handshake for raw requests (RFC 6455 4.1's sample key).
HANDSHAKE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
#: Tunnels checked again every 50 ms.
RECHECK_OFTEN = ServerSettings(tunnel_recheck_seconds=0.05)


# --- the upstream: a WebSocket echo server that records what reached it --------------------------


async def refused_status(
    gate: Gate, path: str, *, headers: dict[str, str] | None = None, origin: str | None = None
) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await gate.client.ws_connect(path, headers=headers, origin=origin)
    return refused.value.status


async def assert_closed_for_policy(ws: aiohttp.ClientWebSocketResponse, reason: str) -> None:
    async with asyncio.timeout(5):
        closing = await ws.receive()
    assert (closing.type, closing.data) == (WSMsgType.CLOSE, WSCloseCode.POLICY_VIOLATION)
    assert closing.extra == reason


# --- the handshake is authorized like any request ----------------------------------------------


async def test_allowed_socket_round_trips_messages_with_identity_upstream(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """An allowed handshake reaches the upstream with identity; text and binary round-trip."""
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate)) as ws:
        await ws.send_str("hello")
        assert await ws.receive_str() == "echo: hello"
        await ws.send_bytes(b"\x00\x01\x02")
        assert await ws.receive_bytes() == b"\x02\x01\x00"
    (handshake,) = sockets.handshakes()
    assert handshake["X-Authenticated-User"] == "alice"
    assert handshake["X-Authenticated-Groups"] == "admins"
    assert handshake["X-Authenticated-Assertion"].count(".") == 2
    assert "Authorization" not in handshake, "the client's token must not reach the upstream"
    assert await sockets.wait_closed() == WSCloseCode.OK


async def test_unauthenticated_handshake_gets_401_and_never_reaches_upstream(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """Without credentials the handshake is answered 401 before any upgrade."""
    assert await refused_status(gate, "/ws/echo") == 401
    assert sockets.requests == []


@pytest.mark.parametrize(("user", "groups"), [("bob", ["eng"]), ("mallory", ["admins"])])
async def test_denied_handshake_gets_403_and_never_reaches_upstream(
    gate: Gate, sockets: SocketUpstream, user: str, groups: list[str]
) -> None:
    """A user the route's policy refuses gets 403 and the upstream sees nothing."""
    headers = gate.bearer(user, groups=groups)
    assert await refused_status(gate, "/ws/echo", headers=headers) == 403
    assert sockets.requests == []


async def test_malformed_handshake_is_400_and_never_reaches_upstream(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """An upgrade request without a valid Sec-WebSocket-Key is refused by idgate itself."""
    headers = {**HANDSHAKE, "Sec-WebSocket-Key": "short", **admin(gate)}
    response = await gate.client.get("/ws/echo", headers=headers)
    assert response.status == 400
    assert sockets.requests == []


# --- Origin -------------------------------------------------------------------------------------


async def test_cross_origin_handshake_not_listed_is_refused(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """A page of an unlisted origin cannot open a socket, even with valid credentials."""
    status = await refused_status(
        gate, "/ws/echo", headers=admin(gate), origin="https://evil.example"
    )
    assert status == 403
    assert sockets.requests == []
    assert (
        gate.metric(
            "idgate_auth_decisions_total", route="sockets", decision="deny", reason="origin"
        )
        == 1
    )


async def test_listed_cross_origin_is_allowed(gate: Gate, sockets: SocketUpstream) -> None:
    """An origin in the route's allowed_origins opens a socket; the upstream sees that Origin."""
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate), origin=LISTED_ORIGIN) as ws:
        await ws.send_str("hi")
        assert await ws.receive_str() == "echo: hi"
    assert sockets.handshakes()[0]["Origin"] == LISTED_ORIGIN


async def test_same_origin_is_allowed_without_configuration(gate: Gate) -> None:
    """A page served through idgate's own address opens a socket with no allowed_origins entry."""
    own = f"http://{gate.client.host}:{gate.client.port}"
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate), origin=own) as ws:
        await ws.send_str("hi")
        assert await ws.receive_str() == "echo: hi"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://idgate.test", True),
        ("HTTPS://IDGATE.TEST", True),
        ("https://idgate.test:443", True),
        ("https://tools.example.com", True),
        ("http://idgate.test", False),
        ("https://idgate.test:8443", False),
        ("https://idgate.test.evil.example", False),
        ("https://example.com", False),
        ("null", False),
        ("", False),
    ],
)
def test_origin_rule(origin: str, expected: bool) -> None:
    """Same origin or a listed one, compared without case and default port; `null` never."""
    allowed = frozenset({"https://tools.example.com"})
    assert origin_allowed(origin, own="https://idgate.test", allowed=allowed) is expected


# --- the 101 rule -------------------------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, CIMultiDict[str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in head[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.add(name, value.strip())
    if "Content-Length" in headers:
        return (
            int(head[0].split()[1]),
            headers,
            await reader.readexactly(int(headers["Content-Length"])),
        )
    body = b""
    while size := int((await reader.readline()).strip(), 16):
        body += await reader.readexactly(size)
        await reader.readline()
    await reader.readline()
    return int(head[0].split()[1]), headers, body


def raw_request(path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: idgate.test",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_refused_upgrade_leaves_an_http_connection_whose_next_request_is_checked(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """The upstream's refusal reaches the client as sent, and the requests pipelined behind it on
    the same connection are each authorized on their own credentials."""
    reader, writer = await asyncio.open_connection(gate.client.host, gate.client.port)
    try:
        writer.write(
            raw_request("/ws/refuse", {**HANDSHAKE, **admin(gate)})
            + raw_request("/api/next", gate.bearer("bob"))
            + raw_request("/api/anonymous", {"Connection": "close"})
        )
        async with asyncio.timeout(5):
            refused = await read_response(reader)
            following = await read_response(reader)
            anonymous = await read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()
    assert (refused[0], refused[1]["X-Why"], refused[2]) == (403, "refused", b"no sockets here")
    assert "Upgrade" not in refused[1]
    assert following[0] == 200
    assert following[2] == b'{"user": "bob"}', "the second request carries its own identity"
    assert anonymous[0] == 401
    assert [h.get("X-Authenticated-User") for h in sockets.requests] == ["alice", "bob"]


@dataclass(kw_only=True)
class StrayUpstream:
    """A raw-socket upstream that refuses every handshake with 426 naming its user. On the first
    connection, once told to (`send_stray`), it sends a second, unasked-for response."""

    url: str = ""
    connections: int = 0
    handshakes: int = 0
    send_stray: asyncio.Event = field(default_factory=asyncio.Event)
    stray_sent: asyncio.Event = field(default_factory=asyncio.Event)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        first = self.connections == 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            self.handshakes += 1
            user = next(
                line.partition(b":")[2].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"x-authenticated-user:")
            )
            writer.write(response(426, user))
            await writer.drain()
            if first:
                first = False
                await self.send_stray.wait()
                try:
                    writer.write(response(200, b"stray for " + user))
                    await writer.drain()
                except ConnectionError:
                    pass  # idgate closed the connection already: the stray goes nowhere
                finally:
                    self.stray_sent.set()
        writer.close()


def response(status: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d Whatever\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


@pytest.fixture
async def stray_upstream() -> AsyncIterator[StrayUpstream]:
    upstream = StrayUpstream()
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    upstream.url = f"http://{host}:{port}"
    async with server:
        yield upstream
        server.close()
        for writer in upstream.writers:
            writer.close()


async def test_a_refused_upgrade_never_shares_its_connection_with_the_next_handshake(
    start_gate: StartGate, stray_upstream: StrayUpstream
) -> None:
    """Each handshake goes upstream on a fresh connection and a refused one's connection is closed,
    so a response an upstream sends after its refusal can never be read as another user's."""
    routes = socket_routes(stray_upstream.url)
    gate = await start_gate(routes=routes)
    answers = []
    for user in ("alice", "bob", "alice", "bob"):
        headers = {**HANDSHAKE, **gate.bearer(user, groups=["admins"])}
        response = await gate.client.get("/ws/echo", headers=headers)
        answers.append((response.status, await response.text()))
        if not stray_upstream.send_stray.is_set():
            stray_upstream.send_stray.set()
            async with asyncio.timeout(5):
                await stray_upstream.stray_sent.wait()
    assert answers == [(426, "alice"), (426, "bob"), (426, "alice"), (426, "bob")]
    assert (stray_upstream.connections, stray_upstream.handshakes) == (4, 4)


async def test_a_redirect_answering_the_handshake_is_relayed_not_followed(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """An upstream that redirects a handshake has its 302 passed to the client."""
    response = await gate.client.get(
        "/ws/moved", headers={**HANDSHAKE, **admin(gate)}, allow_redirects=False
    )
    assert response.status == 302
    assert response.headers["Location"] == "/elsewhere"
    assert len(sockets.requests) == 1


async def test_unreachable_upstream_is_502(unused_tcp_port: int, start_gate: StartGate) -> None:
    """A handshake for an upstream that is down gets 502, and no upgrade."""
    gate = await start_gate(routes=socket_routes(f"http://127.0.0.1:{unused_tcp_port}"))
    assert await refused_status(gate, "/ws/echo", headers=admin(gate)) == 502


# --- the tunnel ---------------------------------------------------------------------------------


async def test_subprotocol_is_the_one_the_upstream_chose(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """The client's offered subprotocols reach the upstream, and its choice reaches the client."""
    async with gate.client.ws_connect(
        "/ws/echo", headers=admin(gate), protocols=("chat.v1", "chat.v2")
    ) as ws:
        assert ws.protocol == "chat.v2"
    assert sockets.handshakes()[0]["Sec-WebSocket-Protocol"] == "chat.v1,chat.v2"


async def test_ping_is_answered_by_the_upstream(gate: Gate) -> None:
    """A client's ping crosses the tunnel and the upstream's pong comes back with its payload."""
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate), autoping=False) as ws:
        await ws.ping(b"are you there")
        pong = await ws.receive()
        assert (pong.type, pong.data) == (WSMsgType.PONG, b"are you there")


async def test_upstream_close_code_and_reason_reach_the_client(gate: Gate) -> None:
    """When the upstream closes with a code and reason, the client receives exactly those."""
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate)) as ws:
        await ws.send_str("close please")
        closing = await ws.receive()
        assert (closing.type, closing.data, closing.extra) == (WSMsgType.CLOSE, 4001, "done")


async def test_client_close_code_reaches_the_upstream(gate: Gate, sockets: SocketUpstream) -> None:
    """When the client closes with a code, the upstream receives that code."""
    ws = await gate.client.ws_connect("/ws/echo", headers=admin(gate))
    await ws.close(code=4002, message=b"client leaving")
    assert await sockets.wait_closed() == 4002
    assert ws.close_code == 4002


async def test_client_vanishing_without_closing_closes_the_upstream_1001(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """A client whose connection drops without a closing handshake leaves the upstream a 1001."""
    reader, writer = await asyncio.open_connection(gate.client.host, gate.client.port)
    writer.write(raw_request("/ws/echo", {**HANDSHAKE, **admin(gate)}))
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    writer.close()
    await writer.wait_closed()
    assert await sockets.wait_closed() == WSCloseCode.GOING_AWAY


async def test_socket_is_closed_1008_when_the_token_expires(
    gate: Gate, sockets: SocketUpstream
) -> None:
    """A bearer socket lives only until the token's exp; then both ends are closed with 1008."""
    expired_within_leeway = int(time.time()) - 5
    async with gate.client.ws_connect(
        "/ws/echo", headers=admin(gate, exp=expired_within_leeway)
    ) as ws:
        await assert_closed_for_policy(ws, EXPIRED)
    assert await sockets.wait_closed() == WSCloseCode.POLICY_VIOLATION


@pytest.fixture
async def rechecking_gate(sockets: SocketUpstream, start_gate: StartGate) -> Gate:
    """A gate whose tunnels are checked again every 50 ms."""
    return await start_gate(routes=socket_routes(sockets.url), server=RECHECK_OFTEN)


async def test_bearer_socket_is_closed_1008_once_its_user_is_revoked(
    rechecking_gate: Gate, sockets: SocketUpstream
) -> None:
    """A bearer socket is checked against the revocation list at every re-check: once an
    operator revokes its user, both ends are closed with 1008, long before the token's exp."""
    gate = rechecking_gate
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate)) as ws:
        await ws.send_str("still here")
        assert await ws.receive_str() == "echo: still here"
        await gate.client.app[RUNTIME_KEY].current.revocations.revoke(RevocationKind.USER, "alice")
        await assert_closed_for_policy(ws, REVOKED)
    assert await sockets.wait_closed() == WSCloseCode.POLICY_VIOLATION


async def test_bearer_socket_is_closed_1008_when_a_reload_takes_the_route_from_its_user(
    rechecking_gate: Gate, sockets: SocketUpstream
) -> None:
    """A bearer socket is authorized again under the configuration current at each re-check: a
    reload whose policy no longer lets the user in closes it with 1008."""
    gate = rechecking_gate
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate)) as ws:
        await ws.send_str("still here")
        assert await ws.receive_str() == "echo: still here"
        sre_only = Policy(allow=Rule(groups=frozenset({"sre"})))
        routes = tuple(replace(route, policy=sre_only) for route in gate.settings.routes)
        await reload_with(gate, replace(gate.settings, routes=routes))
        await assert_closed_for_policy(ws, REVOKED)
    assert await sockets.wait_closed() == WSCloseCode.POLICY_VIOLATION


async def test_bearer_socket_stays_open_while_its_user_is_let_in(
    rechecking_gate: Gate, sockets: SocketUpstream
) -> None:
    """Re-checks that pass keep the socket: another user's revocation and a reload that still
    lets alice in leave it open."""
    gate = rechecking_gate
    async with gate.client.ws_connect("/ws/echo", headers=admin(gate)) as ws:
        await gate.client.app[RUNTIME_KEY].current.revocations.revoke(RevocationKind.USER, "bob")
        await reload_with(gate, replace(gate.settings, routes=gate.settings.routes[::-1]))
        rechecks = gate.settings.server.tunnel_recheck_seconds
        for message in range(5):  # messages spread over several re-checks
            await asyncio.sleep(rechecks)
            await ws.send_str(f"message {message}")
            assert await ws.receive_str() == f"echo: message {message}"
    assert await sockets.wait_closed() == WSCloseCode.OK


async def reload_with(gate: Gate, settings: Settings) -> None:
    """What a SIGHUP reload does once the file is read: a new runtime, swapped in whole."""
    app = gate.client.app
    holder = app[RUNTIME_KEY]
    holder.current = await build_runtime(
        settings, http=app[PROVIDER_CLIENT_KEY], metrics=app[METRICS_KEY], previous=holder.current
    )


@pytest.fixture
async def session_gate(sockets: SocketUpstream, start_gate: StartGate) -> Gate:
    """A gate whose sessions are refreshed and re-verified every 50 ms, with the user alice in
    `admins`."""
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")])
    issuer.userinfo_claims = {"groups": ["admins"]}
    return await start_gate(
        issuer=issuer,
        routes=socket_routes(sockets.url),
        session=SessionSettings(secrets=(Secret(SESSION_SECRET),), refresh_seconds=0.05),
        server=RECHECK_OFTEN,
    )


async def test_session_socket_is_closed_1008_after_backchannel_logout(
    session_gate: Gate, sockets: SocketUpstream
) -> None:
    """A session socket is re-verified at every re-check: once the provider logs the user
    out, the socket and its upstream socket are closed with 1008."""
    gate = session_gate
    cookies = await sign_in(gate)
    async with gate.client.ws_connect("/ws/echo", headers=cookie_header(cookies)) as ws:
        await ws.send_str("still here")
        assert await ws.receive_str() == "echo: still here"
        logout_token = gate.issuer.logout_token(sub="alice", jti="logout-ws")
        ended = await gate.client.post(
            "/oauth2/backchannel_logout", data={"logout_token": logout_token}
        )
        assert ended.status == 200
        await assert_closed_for_policy(ws, REVOKED)
    assert await sockets.wait_closed() == WSCloseCode.POLICY_VIOLATION
    assert "Cookie" not in sockets.handshakes()[0], "the session cookie never reaches upstream"


async def test_session_socket_is_closed_1008_when_the_user_leaves_the_group(
    session_gate: Gate, sockets: SocketUpstream
) -> None:
    """The route's policy is evaluated again at each re-verification, with the groups the
    provider now reports: a user removed from the route's group loses the socket."""
    gate = session_gate
    cookies = await sign_in(gate)
    async with gate.client.ws_connect("/ws/echo", headers=cookie_header(cookies)) as ws:
        await ws.send_str("still here")
        assert await ws.receive_str() == "echo: still here"
        gate.issuer.userinfo_claims = {"groups": ["eng"]}
        await assert_closed_for_policy(ws, REVOKED)
    assert await sockets.wait_closed() == WSCloseCode.POLICY_VIOLATION


async def test_session_socket_is_closed_1008_once_the_sign_in_is_older_than_max_age(
    sockets: SocketUpstream, start_gate: StartGate
) -> None:
    """On a `step_up` route the re-verification applies its max_age too: a socket opened by a
    sign-in 59 s old on a `max_age: 60` route is closed once that sign-in turns 60 s old."""
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")])
    issuer.userinfo_claims = {"groups": ["admins"]}
    issuer.id_token_claims = {"auth_time": math.ceil(time.time()) - 59}
    routes = tuple(
        replace(route, step_up=StepUp(max_age_seconds=60)) for route in socket_routes(sockets.url)
    )
    gate = await start_gate(
        issuer=issuer,
        routes=routes,
        session=SessionSettings(secrets=(Secret(SESSION_SECRET),), refresh_seconds=0.05),
        server=RECHECK_OFTEN,
    )
    cookies = await sign_in(gate)
    async with gate.client.ws_connect("/ws/echo", headers=cookie_header(cookies)) as ws:
        await ws.send_str("still here")
        assert await ws.receive_str() == "echo: still here"
        await assert_closed_for_policy(ws, REVOKED)
    assert await sockets.wait_closed() == WSCloseCode.POLICY_VIOLATION


# --- the pieces ---------------------------------------------------------------------------------


async def test_identity_watch_rechecks_until_the_identity_fails() -> None:
    """Each passing re-check extends the identity; the first failing one ends it."""
    answers = iter([time.time() + 60, time.time() + 60, None])
    calls = 0

    async def recheck() -> float | None:
        nonlocal calls
        calls += 1
        return next(answers)

    watch = IdentityWatch(expires_at=time.time() + 60, recheck=recheck, interval=0.0)
    assert await watch.ended() == REVOKED
    assert calls == 3


async def test_identity_watch_ends_at_expiry_before_a_later_recheck() -> None:
    """An identity that expires before its next re-check ends at expiry without a re-check."""

    async def recheck() -> float | None:
        raise AssertionError("no re-check is due before the expiry")

    watch = IdentityWatch(expires_at=time.time() - 1, recheck=recheck, interval=3600.0)
    assert await watch.ended() == EXPIRED


async def test_identity_watch_fails_closed_when_a_recheck_breaks() -> None:
    """A re-check that raises ends the identity instead of keeping the socket open."""

    async def recheck() -> float | None:
        raise RuntimeError("store exploded")

    watch = IdentityWatch(expires_at=time.time() + 60, recheck=recheck, interval=0.0)
    assert await watch.ended() == REVOKED


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {"Connection": "Upgrade", "Upgrade": "websocket"}, True),
        ("GET", {"Connection": "keep-alive, UPGRADE", "Upgrade": "WebSocket"}, True),
        ("GET", {"Connection": "keep-alive", "Upgrade": "websocket"}, False),
        ("GET", {"Connection": "Upgrade", "Upgrade": "h2c"}, False),
        ("POST", {"Connection": "Upgrade", "Upgrade": "websocket"}, False),
        ("GET", {}, False),
    ],
)
def test_upgrade_detection(method: str, headers: dict[str, str], expected: bool) -> None:
    """Only a GET naming `upgrade` in Connection and `websocket` in Upgrade is a handshake."""
    assert is_websocket_upgrade(method, CIMultiDictProxy(CIMultiDict(headers))) is expected


def test_subprotocols_are_read_in_order_from_the_first_header() -> None:
    """Offered subprotocols keep the client's order; blanks are dropped."""
    headers = CIMultiDict([("Sec-WebSocket-Protocol", "a, b,,c"), ("Sec-WebSocket-Protocol", "d")])
    assert websocket_subprotocols(CIMultiDictProxy(headers)) == ("a", "b", "c")
