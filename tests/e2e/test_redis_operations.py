"""How many Redis commands each kind of request costs, as Redis itself sees them (`MONITOR`):
round trips idgate makes, and the commands its Lua scripts run inside Redis. docs/capacity.md
sizes Redis with these numbers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import pytest
from redis.asyncio import Redis

from proxy.config.model import RedisSettings, Secret, SessionSettings, SessionStoreKind
from tests.e2e.redis_fixture import RedisServer
from tests.support.gate import Gate, StartGate
from tests.support.issuer import FakeIssuer, SigningKey
from tests.support.settings import SESSION_SECRET
from tests.support.signed_in import cookie_header, sign_in

DEADLINE: Final = 10.0

#: Commands a client sends to set up a connection, not per request.
CONNECTION_SETUP: Final = frozenset({"HELLO", "CLIENT"})
END_MARK: Final = "idgate-operations-counted"


@dataclass(frozen=True)
class Counted:
    sent: Counter[str]
    """Commands idgate sent: each one a round trip."""
    scripted: Counter[str]
    """Commands run inside Redis by idgate's Lua scripts."""


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url.reveal())
    yield client
    await client.aclose()


async def commands_of(raw: Redis, action: Callable[[], Awaitable[object]]) -> Counted:
    """The Redis commands `action` made idgate send, up to a mark this client sends after it."""
    sent: Counter[str] = Counter()
    scripted: Counter[str] = Counter()
    async with raw.monitor() as monitor:
        await action()
        await raw.echo(END_MARK)
        while True:
            seen = await asyncio.wait_for(monitor.next_command(), DEADLINE)
            name = seen["command"].split(" ", 1)[0].upper()
            if name == "ECHO" and END_MARK in seen["command"]:
                break
            if name not in CONNECTION_SETUP:
                (scripted if seen["client_type"] == "lua" else sent)[name] += 1
    return Counted(sent=sent, scripted=scripted)


async def redis_gate(
    start_gate: StartGate, redis_server: RedisServer, *, refresh_seconds: float = 300.0
) -> Gate:
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")])
    issuer.userinfo_claims = {"groups": ["admins"]}
    session = SessionSettings(
        secrets=(Secret(SESSION_SECRET),),
        store=SessionStoreKind.REDIS,
        redis=RedisSettings(url=redis_server.url),
        refresh_seconds=refresh_seconds,
    )
    return await start_gate(issuer=issuer, session=session)


async def get_ok(gate: Gate, path: str, headers: dict[str, str]) -> None:
    response = await gate.client.get(path, headers=headers)
    assert response.status == 200


async def test_redis_commands_per_request(
    start_gate: StartGate, redis_server: RedisServer, raw: Redis
) -> None:
    """A request with a session costs one GET; a bearer token none; sign-in writes the record,
    its logout indexes and its entry in the user's session index (one script); sign-out reads
    and deletes the record."""
    gate = await redis_gate(start_gate, redis_server)
    await sign_in(gate)  # loads the scripts and opens the pool once

    cookies = await sign_in(gate)
    headers = cookie_header(cookies)
    request = await commands_of(raw, lambda: get_ok(gate, "/admin", headers))
    assert (request.sent, request.scripted) == ({"GET": 1}, {})
    bearer = await commands_of(raw, lambda: get_ok(gate, "/api", gate.bearer()))
    assert (bearer.sent, bearer.scripted) == ({}, {})

    # The provider's ID token here names no `sid`: one logout index (by `sub`), not two.
    signed_in = await commands_of(raw, lambda: sign_in(gate))
    assert signed_in.sent == {"EVALSHA": 2, "SET": 1}
    # The session index: drop expired entries, add this one, check the cap and the keys' TTLs.
    index = {"ZRANGEBYSCORE": 1, "ZADD": 1, "HSET": 1, "ZCARD": 1, "TTL": 2}
    assert signed_in.scripted == Counter({"SADD": 1, "TTL": 1}) + Counter(index)

    async def sign_out() -> None:
        await gate.client.get("/oauth2/sign_out", headers=headers, allow_redirects=False)

    ended = await commands_of(raw, sign_out)
    assert (ended.sent, ended.scripted) == ({"GET": 1, "DEL": 1}, {})


async def test_redis_commands_of_a_refresh(
    start_gate: StartGate, redis_server: RedisServer, raw: Redis
) -> None:
    """A due session adds the lock (SET NX, then the compare-and-delete script) and the save of
    the refreshed record (one script per logout index, then SET, then the session index's
    last-seen script) to the request's GET."""
    gate = await redis_gate(start_gate, redis_server, refresh_seconds=0.000001)
    headers = cookie_header(await sign_in(gate))
    await get_ok(gate, "/admin", headers)  # the release script is loaded by the first refresh
    counted = await commands_of(raw, lambda: get_ok(gate, "/admin", headers))
    assert counted.sent == {"GET": 1, "SET": 2, "EVALSHA": 3}
    index = {"ZSCORE": 1, "ZADD": 1, "HSET": 1, "TTL": 2}
    assert counted.scripted == Counter({"SADD": 1, "TTL": 1, "GET": 1, "DEL": 1}) + Counter(index)


async def test_redis_commands_of_a_back_channel_logout(
    start_gate: StartGate, redis_server: RedisServer, raw: Redis
) -> None:
    """A logout token reads one index, deletes the records it names, and removes them from it."""
    gate = await redis_gate(start_gate, redis_server)
    await sign_in(gate)
    token = gate.issuer.logout_token(sub="alice", jti="logout-ops")

    async def logout() -> None:
        response = await gate.client.post(
            "/oauth2/backchannel_logout", data={"logout_token": token}
        )
        assert response.status == 200

    counted = await commands_of(raw, logout)
    assert (counted.sent, counted.scripted) == ({"SMEMBERS": 1, "DEL": 1, "SREM": 1}, {})
