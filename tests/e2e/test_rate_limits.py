"""Rate limits in a real `idgate serve`, with the real OpenID provider's tokens and sign-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate
from tests.support.upstream import EchoUpstream

LIMITED = "idgate_rate_limited_total"


@pytest.fixture
def gate(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> Iterator[IdgateProcess]:
    routes = [
        {"name": "api", "path": "/api", "upstream": upstream.url, "allow": {"authenticated": True}}
    ]
    document = base_document(oidc_provider.issuer, routes)
    document["rate_limits"] = {"sign_in_per_minute": 2, "failed_auth_per_minute": 2}
    with running_idgate(tmp_path, document) as process:
        yield process


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_sign_in_starts_past_the_limit_are_refused(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """Two sign-ins go to the provider; the third within the minute gets 429 and Retry-After."""
    statuses = []
    for _ in range(3):
        async with http.get(f"{gate.url}/oauth2/start?rd=/api", allow_redirects=False) as answer:
            statuses.append(answer.status)
            retry_after = answer.headers.get("Retry-After")
    assert statuses == [302, 302, 429]
    assert retry_after == "30"
    assert await gate.metric(LIMITED, limit="sign_in") == 1


async def test_a_real_token_passes_while_failures_are_limited(
    gate: IdgateProcess, http: aiohttp.ClientSession, oidc_provider: OidcProvider
) -> None:
    """Past the failed-authentication limit bad tokens get 429, and the provider's real access
    token from the same address still reaches the upstream."""
    bad = {"Authorization": "Bearer not.a.jwt"}
    statuses = []
    for _ in range(3):
        async with http.get(f"{gate.url}/api/x", headers=bad) as answer:
            statuses.append(answer.status)
    token = await oidc_provider.token_for_user("alice")
    async with http.get(
        f"{gate.url}/api/x", headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        allowed = answer.status

    assert statuses == [401, 401, 429]
    assert allowed == 200
    assert await gate.metric(LIMITED, limit="failed_auth") == 1
