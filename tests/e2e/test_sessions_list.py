"""`idgate sessions --user` and `idgate revoke --session` against the real provider and Redis.

Three browserless sign-ins (tests/e2e/http_sign_in.py) through a trusted proxy's X-Forwarded-For:
alice from a laptop and a phone, bob from his desk. The listing shows alice's two with the
addresses the proxy named and their user agents; revoking the phone's handle ends that session
at once (one process: the admin listener shares its revocation list) while her laptop and bob
keep working; a session refused or signed out leaves the listing. With two workers the
supervisor answers the commands and the revocation reaches both workers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Final

import aiohttp
import pytest
from yarl import URL

from tests.e2e.browser import SignInSetup
from tests.e2e.http_sign_in import PROTECTED_PATH, sign_in
from tests.e2e.idgate_process import IdgateProcess
from tests.e2e.redis_fixture import RedisServer
from tests.e2e.test_revocation import allowed, answers_everywhere, refused

#: Each browser's address as the trusted proxy (the test, on 127.0.0.1) names it, and its agent.
BROWSERS: Final = {
    "alice-laptop": ("203.0.113.7", "Laptop/1.0 (X11)"),
    "alice-phone": ("198.51.100.23", "Phone/2.0\t(tabbed)"),
    "bob-desk": ("192.0.2.44", "Desk/3.0"),
}


@pytest.fixture
async def browsers() -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    """One cookie jar and user agent per browser, each request forwarded for its address."""
    async with AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(
                aiohttp.ClientSession(
                    cookie_jar=aiohttp.CookieJar(unsafe=True),
                    headers={"User-Agent": agent, "X-Forwarded-For": address},
                )
            )
            for name, (address, agent) in BROWSERS.items()
        }


async def status(http: aiohttp.ClientSession, gate: IdgateProcess) -> int:
    async with http.get(
        gate.url + PROTECTED_PATH, headers={"Accept": "application/json"}, allow_redirects=False
    ) as response:
        return response.status


async def sessions_of(gate: IdgateProcess, user: str) -> list[list[str]]:
    """`idgate sessions --user`'s session lines, split at the tabs."""
    run = await gate.command("sessions", "--user", user)
    assert run.returncode == 0, run.stderr
    heading, *lines = run.stdout.splitlines()
    assert heading == f"user {user}: {len(lines)} session{'' if len(lines) == 1 else 's'}"
    return [line.split("\t") for line in lines]


async def test_sessions_lists_a_users_sign_ins_and_revoke_session_ends_exactly_one(
    sign_in_setup: SignInSetup,
    redis_server: RedisServer,
    browsers: dict[str, aiohttp.ClientSession],
) -> None:
    gate = await sign_in_setup.start_workers(
        1,
        {"store": "redis", "redis": {"url": redis_server.url.reveal()}},
        top={"trusted_proxies": ["127.0.0.1"]},
    )
    for name, http in browsers.items():
        await sign_in(http, gate, name.split("-")[0])
        assert await status(http, gate) == 200

    laptop, phone = await sessions_of(gate, "alice")
    assert laptop[3:] == ["client 203.0.113.7", "agent Laptop/1.0 (X11)", "live"]
    assert laptop[1].startswith("created 20")
    assert laptop[2].startswith("last seen 20")
    # A control character the phone sent (a tab) never reaches the operator's terminal.
    assert phone[3:] == ["client 198.51.100.23", "agent Phone/2.0?(tabbed)", "live"]
    [bob] = await sessions_of(gate, "bob")
    assert bob[3] == "client 192.0.2.44"

    done = await gate.command("revoke", "--session", phone[0])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"session {phone[0]}: revoked at ")
    assert [line[-1] for line in await sessions_of(gate, "alice")] == ["live", "revoked"]
    assert await status(browsers["alice-phone"], gate) == 401
    assert await status(browsers["alice-laptop"], gate) == 200
    assert await status(browsers["bob-desk"], gate) == 200
    # The refused phone's session was cleared from the store: it is no longer listed.
    assert [line[0] for line in await sessions_of(gate, "alice")] == [laptop[0]]

    revocations = [e for e in gate.log_entries() if e.get("event") == "revocation"]
    assert [(e["action"], e["kind"], e["value"]) for e in revocations] == [
        ("revoke", "session", phone[0])
    ]
    assert await gate.metric("idgate_admin_revocations_total", action="revoke", kind="session") == 1
    listings = [e for e in gate.log_entries() if e.get("event") == "sessions"]
    assert [e["user"] for e in listings] == ["alice", "bob", "alice", "alice"]

    async with browsers["alice-laptop"].get(
        f"{gate.url}/oauth2/sign_out", allow_redirects=False
    ) as response:
        assert response.status == 302
    assert await sessions_of(gate, "alice") == []
    assert await status(browsers["bob-desk"], gate) == 200


async def test_with_workers_the_supervisor_lists_and_revoke_session_reaches_every_worker(
    sign_in_setup: SignInSetup,
    redis_server: RedisServer,
    browsers: dict[str, aiohttp.ClientSession],
) -> None:
    """With two workers the supervisor serves the admin listener: it lists from Redis itself, and
    a revoked handle is refused by both workers (through the shared list) while the user's other
    session goes on."""
    gate = await sign_in_setup.start_workers(
        2, {"store": "redis", "redis": {"url": redis_server.url.reveal()}}
    )
    cookies = {}
    for name in ("alice-laptop", "alice-phone"):
        http = browsers[name]
        await sign_in(http, gate, "alice")
        jar = http.cookie_jar.filter_cookies(URL(gate.url))
        cookies[name] = {"Cookie": "; ".join(f"{key}={m.value}" for key, m in jar.items())}
    listed = await sessions_of(gate, "alice")
    assert [line[4] for line in listed] == ["agent Laptop/1.0 (X11)", "agent Phone/2.0?(tabbed)"]

    done = await gate.command("revoke", "--session", listed[1][0])
    revoked = time.monotonic()
    assert done.returncode == 0, done.stderr
    await answers_everywhere(gate, cookies["alice-phone"], refused, since=revoked)
    await answers_everywhere(gate, cookies["alice-laptop"], allowed)
