"""`pass_session_access_token` with the real provider: the tool receives the browser session's
access token, the renewed one after every refresh, and it is one the provider honours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.browser import WITH_TOKEN_PATH, SignInSetup
from tests.e2e.http_sign_in import sign_in
from tests.support.upstream import EchoUpstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookie jar: `unsafe` keeps cookies of IP-address hosts such as 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def userinfo_subject(issuer: str, access_token: str) -> str:
    """Who the provider's userinfo endpoint says `access_token` belongs to."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{issuer}/.well-known/openid-configuration") as resp:
            endpoint = (await resp.json())["userinfo_endpoint"]
        headers = {"Authorization": f"Bearer {access_token}"}
        async with http.get(endpoint, headers=headers) as resp:
            assert resp.status == 200
            subject: str = (await resp.json())["sub"]
            return subject


async def test_the_tool_receives_the_sessions_refreshed_access_token(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, http: aiohttp.ClientSession
) -> None:
    """With a refresh due at every request, each request carries the newly issued token, which
    the provider accepts; a route without the option never sees one."""
    gate = await sign_in_setup.start_idgate(refresh_interval="1ms")
    await sign_in(http, gate, "alice")

    tokens = []
    for _ in range(2):
        async with http.get(gate.url + WITH_TOKEN_PATH) as resp:
            assert resp.status == 200
            seen: Any = await resp.json()
            tokens.append(seen["headers"]["x-forwarded-access-token"])
    async with http.get(gate.url + "/elsewhere") as resp:
        assert resp.status == 200
        elsewhere: Any = await resp.json()

    assert tokens[0] != tokens[1], "a refreshed session must send its renewed token"
    assert await userinfo_subject(sign_in_setup.provider.issuer, tokens[1]) == "alice"
    assert "x-forwarded-access-token" not in elsewhere["headers"]
    assert upstream.calls == 3
