"""Holds under abuse: the upstream, the provider and Redis each stop and come back under load.

Each test runs a real `idgate serve` with a bounded background load (tests/e2e/load.py) and
stops one dependency while the load runs, then starts it again where it was. What must hold:
idgate fails closed while it is gone (never a 200 it could not decide, never a request forwarded
without a decision, never a 500 or a hang), and recovers by itself once it is back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from tests.e2e.browser import SESSION_COOKIE, SignInSetup
from tests.e2e.http_sign_in import PROTECTED_PATH, sign_in
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate, sample
from tests.e2e.load import Answer, Load, statuses
from tests.e2e.oidc_provider import OidcProvider
from tests.e2e.redis_fixture import RedisServer
from tests.e2e.tools import API_AUDIENCE
from tests.support.upstream import EchoUpstream, echo_app

#: Answers per phase a test waits for before judging it: enough for every client to have been
#: answered a few times after the change.
PER_PHASE: Final = 30
WITHOUT_DECISION: Final = "idgate_forwarded_without_decision_total"
JWKS_REFRESHES: Final = "idgate_jwks_refreshes_total"
IDENTITY: Final = ("x-authenticated-user", "x-authenticated-assertion")
#: A JSON log line idgate writes for an exception it did not expect.
TRACEBACK: Final = re.compile(r"Traceback|\"exc\"")


class RestartableEcho:
    """The echo upstream on a fixed port, which a test can stop and start again on it."""

    def __init__(self, aiohttp_server: AiohttpServer, port: int) -> None:
        self._serve = aiohttp_server
        self._port = port
        self._server: TestServer | None = None
        self.echo = EchoUpstream(url=f"http://127.0.0.1:{port}")

    async def start(self) -> None:
        self._server = await self._serve(echo_app(self.echo), port=self._port)

    async def stop(self) -> None:
        """Stop listening and close every connection, idgate's pooled ones too."""
        assert self._server is not None
        await self._server.close()


@pytest.fixture
async def restartable_upstream(
    aiohttp_server: AiohttpServer, upstream_port: int
) -> AsyncIterator[RestartableEcho]:
    upstream = RestartableEcho(aiohttp_server, upstream_port)
    await upstream.start()
    yield upstream
    await upstream.stop()


def routes(upstream: str) -> list[dict[str, Any]]:
    return [{"name": "tools", "path": "/", "upstream": upstream, "allow": {"authenticated": True}}]


@pytest.fixture
def bearer_gate(
    module_oidc_provider: OidcProvider, upstream_port: int, tmp_path: Path
) -> Iterator[IdgateProcess]:
    """An idgate for bearer tokens in front of the module's upstream port."""
    document = base_document(
        module_oidc_provider.issuer, routes(f"http://127.0.0.1:{upstream_port}")
    )
    with running_idgate(tmp_path, document) as gate:
        yield gate


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_of(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """One request's status and JSON body, outside the load."""
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, await resp.json()


def count(answers: list[Answer], *wanted: int) -> int:
    return sum(1 for answer in answers if answer.status in wanted)


def assert_only(answers: list[Answer], *allowed: int) -> None:
    assert answers, "no answers in this phase"
    assert set(statuses(answers)) <= set(allowed), dict(statuses(answers))


def assert_identified_every_time(upstream: EchoUpstream, user: str) -> None:
    """Every request the upstream saw came through idgate with `user`'s identity."""
    assert upstream.received, "the upstream saw nothing"
    for seen in upstream.received:
        headers = seen["headers"]
        assert isinstance(headers, dict)
        assert headers.get("x-authenticated-user") == user, headers
        assert all(headers.get(name) for name in IDENTITY), headers


async def assert_failed_closed(gate: IdgateProcess) -> None:
    """Nothing went past the decision, and nothing blew up on the way."""
    exposition = await gate.scrape()
    assert WITHOUT_DECISION in exposition, "the counter is exported even at 0"
    assert sample(exposition, WITHOUT_DECISION) == 0
    assert not TRACEBACK.search(gate.output()), gate.output()[-3000:]


async def test_upstream_down_is_502_and_recovers_on_restart(
    bearer_gate: IdgateProcess,
    module_oidc_provider: OidcProvider,
    restartable_upstream: RestartableEcho,
) -> None:
    """With the upstream stopped, every request gets 502 (never a 200, another 5xx or a hang);
    started again on its port, it gets requests again at once, with the same idgate."""
    token = await module_oidc_provider.token_for_user("alice")
    url = f"{bearer_gate.url}{PROTECTED_PATH}"
    async with Load(url, headers=bearer(token)) as load:
        await load.wait_for("answers before the fault", lambda: len(load.answers) >= PER_PHASE)
        await restartable_upstream.stop()
        down = load.now()
        await load.wait_for(
            "502s while the upstream is down",
            lambda: count(load.sent_after(down), 502, 504) >= PER_PHASE,
        )
        restarting = load.now()
        await restartable_upstream.start()
        up = load.now()
        await load.wait_for(
            "200s after the restart", lambda: count(load.sent_after(up), 200) >= PER_PHASE
        )

    assert_only(load.answers, 200, 502, 504)
    assert_only(load.within(down, restarting), 502, 504)
    assert_only(load.sent_after(up), 200)
    assert all(a.reason for a in load.answers if a.status != 200), "idgate's own error answers"
    assert_identified_every_time(restartable_upstream.echo, "alice")
    assert restartable_upstream.echo.calls == count(load.answers, 200)
    await assert_failed_closed(bearer_gate)


@pytest.fixture
def provider_gate(
    fresh_oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> Iterator[IdgateProcess]:
    """An idgate for bearer tokens from the test's own provider, which the test stops."""
    document = base_document(fresh_oidc_provider.issuer, routes(upstream.url))
    workdir = tmp_path / "idgate"
    workdir.mkdir()
    with running_idgate(workdir, document) as gate:
        yield gate


async def test_provider_down_keeps_known_keys_and_refuses_new_ones_until_it_returns(
    provider_gate: IdgateProcess, fresh_oidc_provider: OidcProvider, upstream: EchoUpstream
) -> None:
    """By design (proxy/oidc/jwks.py) idgate keeps the keys it holds while the provider is down:
    tokens signed with them keep working, /readyz stays ready (keys and metadata are loaded),
    and a token whose kid idgate never saw is refused (401, fail closed) since no JWKS can be
    fetched. Once the provider is back on its port with its keys, that token is accepted (the
    unknown kid triggers a fresh JWKS fetch) without restarting idgate."""
    provider = fresh_oidc_provider
    token = await provider.token_for_user("alice")
    unpublished = await provider.sign({"sub": "alice", "aud": API_AUDIENCE}, key="unpublished")
    new_kid = await provider.rotate_keys()
    rotated = await provider.token_for_user("alice")
    assert jwt.get_unverified_header(rotated)["kid"] == new_kid
    url = f"{provider_gate.url}{PROTECTED_PATH}"
    async with Load(url, headers=bearer(token)) as load:
        await load.wait_for("answers before the fault", lambda: len(load.answers) >= PER_PHASE)
        await asyncio.to_thread(provider.stop)
        down = load.now()
        during = {
            "rotated": await status_of(url, bearer(rotated)),
            "unpublished": await status_of(url, bearer(unpublished)),
            "readyz": await status_of(f"{provider_gate.url}/readyz"),
        }
        await load.wait_for(
            "answers while the provider is down", lambda: len(load.sent_after(down)) >= PER_PHASE
        )
        refreshes_failed = await provider_gate.metric(
            JWKS_REFRESHES, result="failure", issuer="oidc"
        )
        await asyncio.to_thread(provider.restart)
        after = {
            "rotated": await status_of(url, bearer(rotated)),
            "unpublished": await status_of(url, bearer(unpublished)),
            "readyz": await status_of(f"{provider_gate.url}/readyz"),
        }
        up = load.now()
        await load.wait_for(
            "answers after the restart", lambda: len(load.sent_after(up)) >= PER_PHASE
        )

    assert_only(load.answers, 200)
    assert [during[name][0] for name in ("rotated", "unpublished", "readyz")] == [401, 401, 200]
    assert during["rotated"][1]["reason"] == "invalid_token"
    assert during["readyz"][1] == {"ready": True, "issuers": {"oidc": True}}
    assert refreshes_failed >= 1
    assert [after[name][0] for name in ("rotated", "unpublished", "readyz")] == [200, 401, 200]
    # At start, then once for each unknown kid after the restart (jwks_min_refresh_interval 1ms).
    assert await provider_gate.metric(JWKS_REFRESHES, result="success", issuer="oidc") == 3
    assert await provider_gate.metric("idgate_jwks_keys", issuer="oidc") == 2
    assert_identified_every_time(upstream, "alice")
    await assert_failed_closed(provider_gate)


@pytest.fixture
async def redis_gate(
    sign_in_setup: SignInSetup, persistent_redis_server: RedisServer
) -> IdgateProcess:
    """An idgate keeping sessions in a Redis that keeps them across a restart."""
    return await sign_in_setup.start_idgate(
        store="redis", redis_url=persistent_redis_server.url.reveal()
    )


async def test_redis_down_is_503_and_the_session_works_again_when_it_returns(
    redis_gate: IdgateProcess, persistent_redis_server: RedisServer, upstream: EchoUpstream
) -> None:
    """With Redis stopped, a signed-in browser's requests get 503 (the session cannot be read,
    so nothing is decided or forwarded) and /readyz says 503; once Redis is back at its socket
    with its data, the same session cookie works again, with the same idgate."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        cookie = await sign_in(http, redis_gate, "alice")
    readyz = f"{redis_gate.url}/readyz"
    url = f"{redis_gate.url}{PROTECTED_PATH}"
    async with Load(url, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}) as load:
        await load.wait_for("answers before the fault", lambda: len(load.answers) >= PER_PHASE)
        await asyncio.to_thread(persistent_redis_server.stop)
        down = load.now()
        await load.wait_for(
            "503s while Redis is down", lambda: count(load.sent_after(down), 503) >= PER_PHASE
        )
        ready_during = await status_of(readyz)
        restarting = load.now()
        await asyncio.to_thread(persistent_redis_server.start)
        up = load.now()
        await load.wait_for(
            "200s after the restart", lambda: count(load.sent_after(up), 200) >= PER_PHASE
        )
        ready_after = await status_of(readyz)

    assert_only(load.answers, 200, 503)
    assert_only(load.within(down, restarting), 503)
    assert_only(load.sent_after(up), 200)
    assert {a.reason for a in load.answers if a.status == 503} == {"provider_unavailable"}
    assert ready_during == (503, {"ready": False, "issuers": {"oidc": True}})
    assert ready_after == (200, {"ready": True, "issuers": {"oidc": True}})
    assert_identified_every_time(upstream, "alice")
    await assert_failed_closed(redis_gate)


async def test_redis_restarted_without_its_data_ends_sessions_with_a_401(
    sign_in_setup: SignInSetup, redis_server: RedisServer, upstream: EchoUpstream
) -> None:
    """A Redis without persistence comes back empty: the session is gone, so the browser gets a
    401 that clears its cookie (it signs in again), never a 5xx and never the upstream."""
    gate = await sign_in_setup.start_idgate(store="redis", redis_url=redis_server.url.reveal())
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        cookie = await sign_in(http, gate, "alice")
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    url = f"{gate.url}{PROTECTED_PATH}"
    before = (await status_of(url, headers))[0]
    calls = upstream.calls
    redis_server.stop()
    redis_server.start()

    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        status, body, cleared = resp.status, await resp.json(), resp.cookies[SESSION_COOKIE]

    assert before == 200
    assert (status, body["reason"]) == (401, "invalid_session")
    assert (cleared.value, cleared["max-age"]) == ("", "0")
    assert upstream.calls == calls
    await assert_failed_closed(gate)


@pytest.fixture
def own_sign_in_setup(
    fresh_oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> Iterator[SignInSetup]:
    """Idgates for sign-in registered at the test's own provider, which the test stops."""
    setup = SignInSetup(fresh_oidc_provider, upstream=upstream.url, workdir=tmp_path)
    try:
        yield setup
    finally:
        setup.stop()


async def test_provider_down_at_a_session_refresh_is_503_and_keeps_the_session(
    own_sign_in_setup: SignInSetup, fresh_oidc_provider: OidcProvider, upstream: EchoUpstream
) -> None:
    """A signed-in browser whose session is due for a refresh gets 503 while the provider is
    down (nothing is forwarded), and its session is neither ended nor its cookie cleared: an
    outage is not a refusal. (The test provider forgets its grants when it restarts, so the
    recovery itself is pinned in tests/endpoints/test_sign_in.py.)"""
    gate = await own_sign_in_setup.start_idgate(refresh_interval="1ms")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        cookie = await sign_in(http, gate, "alice")
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    url = f"{gate.url}{PROTECTED_PATH}"
    assert (await status_of(url, headers))[0] == 200
    calls = upstream.calls
    async with Load(url, headers=headers) as load:
        await load.wait_for("answers before the fault", lambda: len(load.answers) >= PER_PHASE)
        await asyncio.to_thread(fresh_oidc_provider.stop)
        down = load.now()
        await load.wait_for(
            "503s while the provider is down",
            lambda: count(load.sent_after(down), 503) >= PER_PHASE,
        )
        stopped_calls = upstream.calls
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as last:
        kept = last.status, last.headers.getall("Set-Cookie", [])

    assert_only(load.answers, 200, 503)
    assert_only(load.sent_after(down), 503)
    assert {a.reason for a in load.answers if a.status == 503} == {"provider_unavailable"}
    assert kept == (503, [])
    assert stopped_calls - calls == count(load.answers, 200)
    # Concurrent requests of one session share one refresh, so fewer failures than 503s.
    assert await gate.metric("idgate_session_refreshes_total", result="failure") >= 1
    assert_identified_every_time(upstream, "alice")
    await assert_failed_closed(gate)
