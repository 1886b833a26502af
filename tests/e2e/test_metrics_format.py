"""`/metrics` of a running idgate passes `promtool check metrics`; only its own port serves it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.conftest import API_AUDIENCE, OidcProvider
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate
from tests.e2e.tools import require_tool
from tests.support.upstream import EchoUpstream, serve_echo

PROMTOOL_TIMEOUT = 30.0
FAMILIES = (
    "idgate_requests_total",
    "idgate_request_duration_seconds_bucket",
    "idgate_auth_decisions_total",
    "idgate_token_validations_total",
    "idgate_token_validation_duration_seconds_count",
    "idgate_upstream_duration_seconds_count",
    "idgate_jwks_refreshes_total",
    "idgate_jwks_keys",
    "idgate_config_last_reload_success_timestamp_seconds",
)


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> EchoUpstream:
    return await serve_echo(aiohttp_server)


@pytest.fixture
def gate(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> Iterator[IdgateProcess]:
    routes: list[dict[str, Any]] = [
        {"name": "public", "path": "/public", "upstream": upstream.url, "public": True},
        {
            "name": "admins",
            "path": "/admin",
            "upstream": upstream.url,
            "allow": {"groups": ["admins"]},
        },
        {
            "name": "audit",
            "path": "/audit",
            "upstream": upstream.url,
            "mode": "audit",
            "allow": {"groups": ["admins"]},
        },
    ]
    with running_idgate(tmp_path, base_document(oidc_provider.issuer, routes)) as process:
        yield process


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send_traffic(
    http: aiohttp.ClientSession, gate: IdgateProcess, provider: OidcProvider
) -> None:
    """One request of each kind, so every labelled family has samples to check."""
    alice = {"Authorization": f"Bearer {await provider.token_for_user('alice')}"}
    bob = {"Authorization": f"Bearer {await provider.token_for_user('bob')}"}
    foreign = await provider.sign({"sub": "x", "aud": API_AUDIENCE}, key="unpublished")
    requests = [
        ("GET", "/public", {}),
        ("GET", "/admin", alice),
        ("GET", "/admin", alice),
        ("POST", "/admin", bob),
        ("GET", "/admin", {}),
        ("GET", "/admin", {"Authorization": f"Bearer {foreign}"}),
        ("GET", "/admin", {"Authorization": "Bearer not-a-jwt"}),
        ("DELETE", "/audit", bob),
        ("PROPFIND", "/public", {}),
        ("GET", "/nowhere", {}),
        ("GET", "/healthz", {}),
        ("GET", "/oauth2/jwks", {}),
    ]
    for method, path, headers in requests:
        async with http.request(method, gate.url + path, headers=headers) as resp:
            await resp.read()


async def test_metrics_pass_promtool_check_after_traffic(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """After every kind of request, `promtool check metrics` finds nothing to complain about."""
    promtool = require_tool("promtool", "Debian package prometheus provides promtool")
    await send_traffic(http, gate, oidc_provider)

    exposition = await gate.scrape()
    checker = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(checker.communicate(exposition.encode()), PROMTOOL_TIMEOUT)

    assert (checker.returncode, output.decode(errors="replace")) == (0, "")
    for family in FAMILIES:
        assert f"\n{family}" in exposition, f"{family} has no sample"
    assert 'method="OTHER"' in exposition
    assert "not-a-jwt" not in exposition
    assert "_created" not in exposition


async def test_metrics_are_not_served_on_the_public_port(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """`/metrics` is a 404 on the proxy's port (no route matches it); its own port serves it."""
    async with http.get(f"{gate.url}/metrics") as public:
        public_status, public_body = public.status, await public.text()
    async with http.get(gate.metrics_url) as own:
        own_status = own.status

    assert (public_status, own_status) == (404, 200)
    assert "idgate_requests_total" not in public_body
