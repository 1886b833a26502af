"""`/oauth2/ext_authz` with a real `idgate serve` and the real provider, asked the way Envoy asks:
the original method, Host and path under the prefix, with the session cookie Istio includes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.e2e.browser import SESSION_COOKIE, WITH_TOKEN_PATH, SignInSetup
from tests.e2e.http_sign_in import sign_in
from tests.support.upstream import EchoUpstream


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookie jar: `unsafe` keeps cookies of IP-address hosts such as 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_a_session_is_checked_like_envoy_asks(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, http: aiohttp.ClientSession
) -> None:
    """Signed in: 200 with the identity (and the session's token where the route passes it).
    Without the cookie, a browser is sent to sign in and back to the original URL; an admins-only
    path is 403 for a user who is not an admin."""
    gate = await sign_in_setup.start_idgate()
    session = await sign_in(http, gate, "bob")
    cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
    check = f"{gate.url}/oauth2/ext_authz"

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as envoy:
        async with envoy.post(f"{check}{WITH_TOKEN_PATH}/x?y=1", headers=cookie) as allowed:
            assert allowed.status == 200
            identity = dict(allowed.headers)
        async with envoy.get(f"{check}/admin", headers=cookie) as denied:
            assert denied.status == 403
        browser = {"Accept": "text/html", "Host": "tools.example.com"}
        async with envoy.get(
            f"{check}/wiki?page=2", headers=browser, allow_redirects=False
        ) as sent:
            assert sent.status == 302
            location = urlsplit(sent.headers["Location"])

    assert identity["X-Authenticated-User"] == "bob"
    assert identity["X-Forwarded-Access-Token"]
    assert parse_qs(location.query)["rd"] == ["http://tools.example.com/wiki?page=2"]
    assert upstream.calls == 0, "a check never reaches the tool"
