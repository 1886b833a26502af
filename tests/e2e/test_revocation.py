"""Ending access everywhere: a back-channel logout received by one worker ends the session in
every worker of the host; `idgate revoke --user` ends a user's sessions and bearer tokens on
every worker and every replica sharing Redis within 5 seconds, leaving other users alone, and
closes the WebSockets her bearer tokens opened within the tunnel re-check interval.

Which worker answered is read from /proc (tests/e2e/workers.py): each check repeats requests on
new connections until every worker has answered as expected, or the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType
from playwright.async_api import BrowserContext
from pytest_aiohttp import AiohttpServer

from proxy.config.model import Secret
from proxy.server.admin import admin_token
from proxy.stages.watch import REVOKED
from tests.e2e.browser import (
    SignInSetup,
    browser_context,
    chromium,
    end_provider_session,
    sign_in_routes,
    signed_in_page,
)
from tests.e2e.idgate_process import (
    SESSION_SECRET,
    CommandRun,
    IdgateProcess,
    base_document,
    running_idgate,
)
from tests.e2e.minted_session import mint_session
from tests.e2e.oidc_provider import OidcProvider
from tests.e2e.redis_fixture import RedisServer
from tests.e2e.workers import status_and_worker
from tests.forward.sockets import serve_sockets
from tests.support.upstream import EchoUpstream

#: The issue's promise: a revocation is in force everywhere within this long.
WITHIN: Final = 5.0
PATH: Final = "/wiki/home"
POLL_SECONDS: Final = 0.05
#: Printed per check so a run shows the measured propagation delays (pytest -s).
MEASURED: list[str] = []


async def answers_everywhere(
    gate: IdgateProcess,
    headers: Mapping[str, str],
    expect: Callable[[int], bool],
    *,
    within: float = WITHIN,
    since: float | None = None,
) -> float:
    """Seconds from `since` (a time.monotonic(); default now) until every worker of `gate`
    answered `headers` at PATH with a status `expect` accepts (each worker's latest answer
    counts); fails when that takes longer than `within`."""
    started = time.monotonic() if since is None else since
    latest: dict[int, int] = {}
    request_headers = {"Accept": "application/json", **headers}
    while True:
        # A new connection each time: the kernel picks a worker for each.
        status, pid = await status_and_worker(gate.pid, gate.port, PATH, request_headers)
        if gate.workers == 1:
            pid = gate.pid
        if pid is not None:
            latest[pid] = status
        if len(latest) == gate.workers and all(expect(status) for status in latest.values()):
            return time.monotonic() - started
        if time.monotonic() - started > within:
            pytest.fail(f"not every worker answered as expected within {within}s: {latest}")
        await asyncio.sleep(POLL_SECONDS)  # another process applies it: poll for it


async def revoke_everywhere(
    gate: IdgateProcess, user: str, credentials: Mapping[str, str], measured: str
) -> None:
    """`idgate revoke --user USER`, then until every worker refuses `credentials`; the delay
    since the command returned is recorded as `measured`."""
    done = await revoke(gate, "--user", user)
    revoked = time.monotonic()
    assert done.returncode == 0, done.stderr
    delay = await answers_everywhere(gate, credentials, refused, since=revoked)
    MEASURED.append(f"{measured}: {delay:.2f}s")


def allowed(status: int) -> bool:
    return status == 200


def refused(status: int) -> bool:
    return status == 401


async def revoke(gate: IdgateProcess, *arguments: str, secret: str | None = None) -> CommandRun:
    """`idgate revoke` with `gate`'s config (and another session secret when `secret` is
    given)."""
    return await gate.command("revoke", *arguments, secret=secret)


@pytest.fixture
async def context() -> AsyncIterator[BrowserContext]:
    async with chromium() as browser, browser_context(browser) as context:
        yield context


async def test_a_back_channel_logout_received_by_one_worker_ends_the_session_in_every_worker(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, context: BrowserContext
) -> None:
    """With the cookie store and two workers, the provider's logout token reaches one of them,
    and alice's cookie is refused by both (the workers share the host's revocation log)."""
    gate = await sign_in_setup.start_workers(2, {})
    page = await signed_in_page(context, sign_in_setup.provider.issuer, gate.url + PATH, "alice")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in await context.cookies(gate.url))
    await answers_everywhere(gate, {"Cookie": cookies}, allowed)

    await end_provider_session(page, sign_in_setup.provider.issuer)
    # The provider has posted the logout token before it shows its success page.
    delay = await answers_everywhere(gate, {"Cookie": cookies}, refused)
    MEASURED.append(f"back-channel logout, cookie store, 2 workers: {delay:.2f}s")
    assert await gate.metric("idgate_logouts_total", result="backchannel") == 1


async def test_revoke_ends_a_users_sessions_in_every_worker_of_a_host(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> None:
    """`idgate revoke --user alice` at the supervisor's admin listener reaches both workers."""
    document = base_document(oidc_provider.issuer, sign_in_routes(upstream.url))
    with running_idgate(tmp_path, document, workers=2) as gate:
        alice = {"Cookie": await mint_session(gate.config_path, "alice")}
        bob = {"Cookie": await mint_session(gate.config_path, "bob")}
        await answers_everywhere(gate, alice, allowed)

        await revoke_everywhere(gate, "alice", alice, "idgate revoke, cookie store, 2 workers")
        await answers_everywhere(gate, bob, allowed)
        assert (
            await gate.metric("idgate_admin_revocations_total", action="revoke", kind="user") == 1
        )


@pytest.fixture(params=["redis", "cookie"])
async def replicas(
    request: pytest.FixtureRequest,
    oidc_provider: OidcProvider,
    upstream: EchoUpstream,
    redis_server: RedisServer,
    tmp_path: Path,
) -> AsyncIterator[tuple[IdgateProcess, IdgateProcess]]:
    """Two replicas (one process each) sharing one Redis: as their session store, or (with the
    cookie store) for the revocation list alone."""
    document = base_document(oidc_provider.issuer, sign_in_routes(upstream.url))
    document["session"] |= {"store": request.param, "redis": {"url": redis_server.url.reveal()}}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_idgate(tmp_path / "a", document) as first,
        running_idgate(tmp_path / "b", document) as second,
    ):
        yield first, second


async def test_revoke_ends_a_users_sessions_and_tokens_on_every_replica(
    replicas: tuple[IdgateProcess, IdgateProcess], oidc_provider: OidcProvider
) -> None:
    """`idgate revoke --user alice` at replica A ends her browser session and refuses her bearer
    token at A and B within 5 s; bob's session and token keep working; `--list` shows it and
    `--lift` lifts it everywhere."""
    first, second = replicas
    alice_session = {"Cookie": await mint_session(first.config_path, "alice")}
    bob_session = {"Cookie": await mint_session(first.config_path, "bob")}
    alice_token = {"Authorization": f"Bearer {await oidc_provider.token_for_user('alice')}"}
    bob_token = {"Authorization": f"Bearer {await oidc_provider.token_for_user('bob')}"}
    for gate in replicas:
        for credentials in (alice_session, alice_token, bob_session, bob_token):
            await answers_everywhere(gate, credentials, allowed)

    done = await revoke(first, "--user", "alice")
    revoked = time.monotonic()
    assert done.returncode == 0, done.stderr
    assert "user alice: revoked at" in done.stdout
    for name, gate in zip("AB", replicas, strict=True):
        for kind, credentials in (("session", alice_session), ("token", alice_token)):
            delay = await answers_everywhere(gate, credentials, refused, since=revoked)
            MEASURED.append(f"idgate revoke, Redis, replica {name}, {kind}: {delay:.2f}s")
        for credentials in (bob_session, bob_token):
            await answers_everywhere(gate, credentials, allowed)

    listed = await revoke(second, "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("user\talice\trevoked ")
    assert len(listed.stdout.splitlines()) == 1

    lifted = await revoke(second, "--lift", "--user", "alice")
    assert lifted.returncode == 0, lifted.stderr
    assert lifted.stdout == "user alice: lifted\n"
    for gate in replicas:
        await answers_everywhere(gate, alice_token, allowed)
    assert (await revoke(first, "--list")).stdout == ""
    entries = [e for e in first.log_entries() if e.get("event") == "revocation"]
    assert [(e["action"], e["kind"], e["value"]) for e in entries] == [("revoke", "user", "alice")]


async def test_the_admin_endpoint_refuses_a_missing_or_wrong_token(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> None:
    """Whoever can scrape metrics cannot revoke: no token or a wrong one is 401; `idgate revoke`
    with another deployment's secret exits 3; the public port has no admin endpoint."""
    document = base_document(oidc_provider.issuer, sign_in_routes(upstream.url))
    with running_idgate(tmp_path, document) as gate:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer not-the-admin-token"}):
                async with http.post(
                    f"{gate.admin_url}/admin/revocations",
                    json={"kind": "user", "value": "alice"},
                    headers=headers,
                ) as response:
                    assert response.status == 401
            # Even the right token opens nothing on the public port: no route, no revocation.
            admin = {"Authorization": f"Bearer {admin_token(Secret(SESSION_SECRET))}"}
            async with http.post(
                f"{gate.url}/admin/revocations",
                json={"kind": "user", "value": "alice"},
                headers=admin,
                allow_redirects=False,
            ) as response:
                assert response.status != 201
            async with http.get(f"{gate.admin_url}/admin/revocations", headers=admin) as response:
                assert (await response.json())["revocations"] == []
        other = await revoke(gate, "--list", secret="another-deployments-secret-0123456789")
        assert other.returncode == 3
        assert "401" in other.stderr
        assert (await revoke(gate, "--list")).returncode == 0


#: A short `server.tunnel_recheck_interval`, so the test waits little for the close.
RECHECK_SECONDS: Final = 0.2


def sockets_document(issuer: str, upstream: str, allow: dict[str, Any]) -> dict[str, Any]:
    """A config with one WebSocket route, `/ws` to `upstream`, letting `allow` in, whose
    tunnels are re-checked every RECHECK_SECONDS."""
    route = {"name": "sockets", "path": "/ws", "upstream": upstream, "allow": allow}
    document = base_document(issuer, [route])
    document["server"] = {"tunnel_recheck_interval": f"{RECHECK_SECONDS * 1000:.0f}ms"}
    return document


@asynccontextmanager
async def bearer_sockets(
    gate: IdgateProcess, oidc_provider: OidcProvider, *users: str
) -> AsyncIterator[list[aiohttp.ClientWebSocketResponse]]:
    """A WebSocket to `/ws/echo` per user, opened with a bearer token of theirs, each relaying."""
    async with aiohttp.ClientSession() as http, AsyncExitStack() as sockets:
        opened = []
        for user in users:
            token = await oidc_provider.token_for_user(user)
            socket = await sockets.enter_async_context(
                http.ws_connect(f"{gate.url}/ws/echo", headers={"Authorization": f"Bearer {token}"})
            )
            await socket.send_str("open")
            assert await socket.receive_str() == "echo: open"
            opened.append(socket)
        yield opened


async def closed_for_policy(socket: aiohttp.ClientWebSocketResponse) -> None:
    """Until idgate closes `socket` with 1008 because its identity no longer holds."""
    async with asyncio.timeout(WITHIN):
        closing = await socket.receive()
    assert (closing.type, closing.data) == (WSMsgType.CLOSE, WSCloseCode.POLICY_VIOLATION)
    assert closing.extra == REVOKED


async def still_relays(socket: aiohttp.ClientWebSocketResponse) -> None:
    await socket.send_str("still here")
    assert await socket.receive_str() == "echo: still here"


async def test_revoke_closes_the_users_bearer_websockets_within_the_recheck_interval(
    oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """A WebSocket alice opened with her bearer token is closed with 1008 at both ends soon
    after `idgate revoke --user alice` returns (within the re-check interval, the token's hour
    notwithstanding); bob's socket, on the same route, keeps relaying."""
    sockets = await serve_sockets(aiohttp_server)
    document = sockets_document(oidc_provider.issuer, sockets.url, {"authenticated": True})
    with running_idgate(tmp_path, document) as gate:
        async with bearer_sockets(gate, oidc_provider, "alice", "bob") as (alice, bob):
            done = await revoke(gate, "--user", "alice")
            revoked = time.monotonic()
            assert done.returncode == 0, done.stderr
            await closed_for_policy(alice)
            delay = time.monotonic() - revoked
            MEASURED.append(f"idgate revoke, bearer WebSocket closed after: {delay:.2f}s")
            await still_relays(bob)
        assert WSCloseCode.POLICY_VIOLATION in sockets.close_codes, "alice's upstream socket too"


def test_zz_report_measured_delays() -> None:
    """Not a check: prints the propagation delays measured above (shown with pytest -s)."""
    print("\n".join(MEASURED))  # noqa: T201 (the measurement is the output)
