"""Reload and the admin endpoints: after a SIGHUP that rotates `session.secret`, `idgate revoke`
(whose admin token comes from the new secret) is accepted at once, with one process or a
supervisor and workers; a SIGHUP that moves the revocation list (adds `session.redis`) keeps the
revocations in force and sends the next ones where the workers now read; a SIGHUP that takes a
route from a user closes the WebSocket her bearer token opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from proxy.config.model import Secret
from proxy.server.admin import PATH as ADMIN_PATH
from proxy.server.admin import admin_token
from tests.e2e.browser import sign_in_routes
from tests.e2e.idgate_process import SESSION_SECRET, IdgateProcess, base_document, running_idgate
from tests.e2e.oidc_provider import OidcProvider
from tests.e2e.redis_fixture import RedisServer
from tests.e2e.test_revocation import (
    allowed,
    answers_everywhere,
    bearer_sockets,
    closed_for_policy,
    refused,
    revoke,
    revoke_everywhere,
    sockets_document,
    still_relays,
)
from tests.forward.sockets import serve_sockets
from tests.support.upstream import EchoUpstream

ROTATED_SECRET: Final = "rotated-session-secret-0123456789abcdefgh"
RELOADED: Final = "configuration reloaded"
ADMIN_RELOADED: Final = "admin endpoints reloaded"


async def reload(gate: IdgateProcess, document: dict[str, Any]) -> None:
    """Write `document`, SIGHUP, and wait until every worker (and a supervisor's admin
    endpoints) took it."""
    gate.write_config(document)
    mark = gate.log_mark()
    gate.send_hup()
    await gate.wait_for_entries(lambda e: says(e, RELOADED), gate.workers, after=mark)
    if gate.workers > 1:
        await gate.wait_for_entry(lambda e: says(e, ADMIN_RELOADED), after=mark)


def says(entry: dict[str, Any], message: str) -> bool:
    return str(entry.get("msg", "")).startswith(message)


@pytest.mark.parametrize("workers", [1, 2])
async def test_revoke_works_right_after_a_reload_that_rotates_the_session_secret(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path, workers: int
) -> None:
    """Rotating `session.secret` (the new one first) and reloading: `idgate revoke`, which
    derives its admin token from the new secret, is accepted and reaches every worker; the old
    secret's token is still accepted while that secret is listed."""
    document = base_document(oidc_provider.issuer, sign_in_routes(upstream.url))
    alice = {"Authorization": f"Bearer {await oidc_provider.token_for_user('alice')}"}
    with running_idgate(tmp_path, document, workers=workers) as gate:
        await answers_everywhere(gate, alice, allowed)
        document["session"] = {"secret": [ROTATED_SECRET, document["session"]["secret"]]}
        await reload(gate, document)

        measured = f"idgate revoke after a secret rotation, {workers} workers"
        await revoke_everywhere(gate, "alice", alice, measured)
        old_token = {"Authorization": f"Bearer {admin_token(Secret(SESSION_SECRET))}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gate.admin_url}{ADMIN_PATH}", headers=old_token) as listed,
        ):
            assert listed.status == 200
            assert [e["value"] for e in (await listed.json())["revocations"]] == ["alice"]


async def test_a_reload_that_moves_the_revocation_list_keeps_it_and_revoke_follows(
    oidc_provider: OidcProvider, upstream: EchoUpstream, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two workers with the cookie store share the host's revocation file; a reload adds
    `session.redis`, so the list moves to Redis: bob, revoked before, stays refused by both
    workers, and `idgate revoke --user alice` afterwards (the supervisor writes it) reaches
    both."""
    document = base_document(oidc_provider.issuer, sign_in_routes(upstream.url))
    alice = {"Authorization": f"Bearer {await oidc_provider.token_for_user('alice')}"}
    bob = {"Authorization": f"Bearer {await oidc_provider.token_for_user('bob')}"}
    with running_idgate(tmp_path, document, workers=2) as gate:
        assert (await revoke(gate, "--user", "bob")).returncode == 0
        await answers_everywhere(gate, bob, refused)
        document["session"] |= {"redis": {"url": redis_server.url.reveal()}}
        await reload(gate, document)
        await answers_everywhere(gate, alice, allowed)
        await answers_everywhere(gate, bob, refused)

        measured = "idgate revoke after the list moved to Redis, 2 workers"
        await revoke_everywhere(gate, "alice", alice, measured)
        listed = await revoke(gate, "--list")
        assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [
            ["user", "bob"],
            ["user", "alice"],
        ]


async def test_a_reload_that_takes_the_route_from_a_user_closes_her_bearer_websocket(
    oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """A SIGHUP whose policy leaves alice out of the route closes the WebSocket she opened with
    her bearer token (1008) at its next re-check; bob's, still let in, keeps relaying."""
    sockets = await serve_sockets(aiohttp_server)
    document = sockets_document(oidc_provider.issuer, sockets.url, {"users": ["alice", "bob"]})
    with running_idgate(tmp_path, document) as gate:
        async with bearer_sockets(gate, oidc_provider, "alice", "bob") as (alice, bob):
            document["routes"][0]["allow"] = {"users": ["bob"]}
            await reload(gate, document)
            await closed_for_policy(alice)
            await still_relays(bob)
