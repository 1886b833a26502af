"""Step-up per route with the real oidc-provider, without a browser.

The provider (tests/e2e/provider) signs in at `acr` urn:idgate:test:mfa exactly when the
authorization request's `acr_values` asks for it, and at urn:idgate:test:password otherwise. The
"2-minute-old session" is a record sealed with idgate's secret whose sign-in is 120 s old, as
bench/session_cookie.py mints them: no test waits for a clock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import aiohttp
import pytest
from yarl import URL

from proxy.config.model import Secret
from proxy.identity.principal import SignIn
from proxy.sessions.cookie_store import CookieStore
from tests.e2e.browser import ACR_MFA, ACR_PASSWORD, SESSION_COOKIE, VAULT_PATH, SignInSetup
from tests.e2e.http_sign_in import CALLBACK_PATH
from tests.e2e.idgate_process import SESSION_SECRET, IdgateProcess
from tests.e2e.provider_login import log_in
from tests.sessions.records import record

HTML = {"Accept": "text/html"}


@pytest.fixture
async def gate(sign_in_setup: SignInSetup) -> IdgateProcess:
    return await sign_in_setup.start_idgate()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookie jar: `unsafe` keeps cookies of IP-address hosts such as 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def aged_session(seconds: float, *, acr: str) -> str:
    """A session cookie for alice, sealed with idgate's secret, whose sign-in is `seconds` old."""
    store = CookieStore(
        [Secret(SESSION_SECRET)], cookie_name=SESSION_COOKIE, max_lifetime_seconds=3600
    )
    now = time.time()
    aged = replace(
        record(subject="alice", provider_sid=None, created_at=now),
        user="alice",
        sign_in=SignIn(auth_time=now - seconds, acr=acr, amr=frozenset({"pwd", "otp"})),
    )
    [change] = await store.save(aged, {}, max_age=3600)
    assert change.value is not None
    return change.value


def session_of(http: aiohttp.ClientSession, gate: IdgateProcess) -> str:
    return http.cookie_jar.filter_cookies(URL(gate.url))[SESSION_COOKIE].value


async def test_an_old_session_is_sent_back_to_the_provider_for_max_age_and_acr(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """A 2-minute-old session on a `max_age: 60` route is sent to sign in again; the provider
    is asked for max_age and the MFA acr, and the ID token it returns passes the route."""
    old = await aged_session(120, acr=ACR_MFA)
    http.cookie_jar.update_cookies({SESSION_COOKIE: old}, URL(gate.url))
    async with http.get(gate.url + "/tools", headers=HTML, allow_redirects=False) as resp:
        assert resp.status == 200, "the old session is good for a route without step-up"
    async with http.get(gate.url + VAULT_PATH, headers=HTML, allow_redirects=False) as resp:
        assert resp.status == 302
        start = resp.headers["Location"]
    assert urlsplit(start).path == "/oauth2/start"
    async with http.get(start, allow_redirects=False) as resp:
        authorization = dict(parse_qsl(urlsplit(resp.headers["Location"]).query))
    assert authorization["max_age"] == "60"
    assert authorization["acr_values"] == ACR_MFA
    callback = await log_in(http, start, username="alice", back_to=gate.url + CALLBACK_PATH)
    async with http.get(callback, allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == gate.url + VAULT_PATH
    assert session_of(http, gate) != old
    async with http.get(gate.url + VAULT_PATH, allow_redirects=False) as resp:
        assert resp.status == 200
        assert (await resp.json())["headers"]["x-authenticated-user"] == "alice"


async def test_a_forged_acr_values_does_not_pass_the_route(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """A sign-in for the step-up route whose acr_values the user edited in the provider URL
    gets a password-only ID token: the callback refuses it, and an API client on the route gets
    the RFC 9470 challenge."""
    rd = quote(gate.url + VAULT_PATH, safe="")
    async with http.get(f"{gate.url}/oauth2/start?rd={rd}", allow_redirects=False) as resp:
        parts = urlsplit(resp.headers["Location"])
    query = [(k, ACR_PASSWORD if k == "acr_values" else v) for k, v in parse_qsl(parts.query)]
    forged = parts._replace(query=urlencode(query)).geturl()
    callback = await log_in(http, forged, username="alice", back_to=gate.url + CALLBACK_PATH)
    async with http.get(callback, headers=HTML, allow_redirects=False) as resp:
        assert resp.status == 401
        assert SESSION_COOKIE not in resp.cookies

    # A sign-in for another page is password-only too; it holds, but not for the vault.
    tools = quote(gate.url + "/tools", safe="")
    start = f"{gate.url}/oauth2/start?rd={tools}"
    callback = await log_in(http, start, username="alice", back_to=gate.url + CALLBACK_PATH)
    async with http.get(callback, allow_redirects=False) as resp:
        assert resp.status == 302
    async with http.get(gate.url + "/tools", allow_redirects=False) as resp:
        assert resp.status == 200
    async with http.get(gate.url + VAULT_PATH, allow_redirects=False) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == (
            'Bearer realm="idgate", error="insufficient_user_authentication", '
            'error_description="A more recent or stronger sign-in is required", '
            f'acr_values="{ACR_MFA}", max_age="60"'
        )
