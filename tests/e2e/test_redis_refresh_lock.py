"""Three idgate replicas on one Redis and one provider: a session that falls due is refreshed by
exactly one of them, however many receive its requests at that moment."""

from __future__ import annotations

import asyncio
from typing import Final

from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient, AiohttpServer

from proxy.config.model import RedisSettings, Secret, SessionSettings, SessionStoreKind
from proxy.server.app import build_app
from tests.e2e.redis_fixture import RedisServer
from tests.support.gate import Gate
from tests.support.issuer import FakeIssuer, SigningKey, serve_issuer
from tests.support.settings import SESSION_SECRET, make_settings
from tests.support.signed_in import cookie_header, sign_in
from tests.support.upstream import serve_echo

REPLICAS: Final = 3
DEADLINE: Final = 10.0


async def replicas_on(
    redis_server: RedisServer,
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    issuer: FakeIssuer,
) -> list[Gate]:
    """REPLICAS gates with one provider and one Redis; every session is due at every request."""
    upstream = await serve_echo(aiohttp_server)
    session = SessionSettings(
        secrets=(Secret(SESSION_SECRET),),
        store=SessionStoreKind.REDIS,
        redis=RedisSettings(url=redis_server.url),
        refresh_seconds=0.000001,
    )
    gates = []
    for _ in range(REPLICAS):
        settings = make_settings(issuer.url, upstream.url, session=session)
        registry = CollectorRegistry()
        client = await aiohttp_client(build_app(settings, registry=registry))
        gates.append(
            Gate(
                client=client,
                issuer=issuer,
                upstream=upstream,
                registry=registry,
                settings=settings,
            )
        )
    return gates


async def test_exactly_one_replica_refreshes_a_due_session(
    redis_server: RedisServer, aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient
) -> None:
    """While one replica's refresh waits at the provider, the other two answer from the current
    record (the refresh lock is taken); the provider sees one refresh grant, not three."""
    issuer = await serve_issuer(aiohttp_server, FakeIssuer(keys=[SigningKey(kid="k1")]))
    issuer.userinfo_claims = {"groups": ["admins"]}
    gates = await replicas_on(redis_server, aiohttp_server, aiohttp_client, issuer)
    headers = cookie_header(await sign_in(gates[0]))
    issuer.token_hang = asyncio.Event()
    requests = [asyncio.ensure_future(gate.client.get("/admin", headers=headers)) for gate in gates]
    answered, waiting = await asyncio.wait(
        requests, timeout=DEADLINE, return_when="FIRST_COMPLETED"
    )
    while len(answered) < REPLICAS - 1 and waiting:
        more, waiting = await asyncio.wait(waiting, timeout=DEADLINE, return_when="FIRST_COMPLETED")
        assert more, "replicas that do not hold the lock answer without waiting for the provider"
        answered |= more
    assert len(answered) == REPLICAS - 1
    assert len(waiting) == 1, "one replica holds the refresh at the provider"
    issuer.token_hang.set()
    responses = await asyncio.gather(*requests)
    assert [response.status for response in responses] == [200] * REPLICAS
    grants = [form for form in issuer.token_requests if form["grant_type"] == "refresh_token"]
    assert len(grants) == 1
    refreshes = [gate.metric("idgate_session_refreshes_total", result="success") for gate in gates]
    assert sorted(refreshes) == [0, 0, 1]
