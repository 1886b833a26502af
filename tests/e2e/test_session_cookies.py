"""Session and sign-in state cookies against a real sign-in, without a browser.

An aiohttp client with a cookie jar takes the browser's part (tests/e2e/http_sign_in.py), so a
test can stop right before the callback, keep or alter any cookie, and replay what it kept.
Every cookie idgate refuses gets a 401 and a Set-Cookie that clears it, so a broken cookie never
lingers. A session too large for the cookie store is refused at sign-in and never written.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest

from proxy.config.model import Secret
from proxy.sessions.cookie_store import CookieStore
from tests.e2e.browser import SESSION_COOKIE, SignInSetup
from tests.e2e.http_sign_in import (
    CALLBACK_PATH,
    PROTECTED_PATH,
    STATE_COOKIE_PREFIX,
    authorize,
    sign_in,
)
from tests.e2e.idgate_process import IdgateProcess
from tests.e2e.redis_fixture import RedisServer
from tests.sessions.records import record
from tests.support.upstream import EchoUpstream

#: A test user (accounts.mjs) in MANY_GROUPS long-named groups, which the provider gives at
#: userinfo only: too large a session for the cookie store.
MANY_GROUPS_USER: Final = "many-groups"
MANY_GROUPS: Final = 1500


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    status: int
    body: Any
    cookies: SimpleCookie


@pytest.fixture
def store(request: pytest.FixtureRequest) -> dict[str, str]:
    """Session settings of the store a test names (indirect parameter); the cookie store if none."""
    if getattr(request, "param", "cookie") == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        return {"store": "redis", "redis_url": redis.url.reveal()}
    return {}


@pytest.fixture
async def gate(sign_in_setup: SignInSetup, store: dict[str, str]) -> IdgateProcess:
    return await sign_in_setup.start_idgate(**store)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookie jar: `unsafe` keeps cookies of IP-address hosts such as 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def get(url: str, cookies: Mapping[str, str]) -> Answer:
    """GET `url` as an API client sending exactly `cookies` (no jar, no redirects followed)."""
    header = "; ".join(f"{name}={value}" for name, value in cookies.items())
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        http.get(url, headers={"Cookie": header}, allow_redirects=False) as resp,
    ):
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return Answer(status=resp.status, body=body, cookies=resp.cookies)


def with_state(callback_url: str, state: str) -> str:
    parts = urlsplit(callback_url)
    query = [(k, state if k == "state" else v) for k, v in parse_qsl(parts.query)]
    return parts._replace(query=urlencode(query)).geturl()


def assert_cleared(answer: Answer, name: str, *, path: str) -> None:
    """The answer deletes cookie `name`: empty, expired at once, on the path it was set for."""
    assert name in answer.cookies, f"no Set-Cookie for {name}"
    morsel = answer.cookies[name]
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    assert morsel["path"] == path


def assert_refused_session(answer: Answer) -> None:
    assert answer.status == 401
    assert answer.body["reason"] == "invalid_session"
    assert_cleared(answer, SESSION_COOKIE, path="/")


def tampered(value: str) -> str:
    """`value` with one character in its middle replaced (every base64url character there
    carries six bits of the sealed bytes)."""
    index = len(value) // 2
    while not value[index].isalnum():
        index += 1
    return value[:index] + ("A" if value[index] != "A" else "B") + value[index + 1 :]


async def forged() -> str:
    """A well-formed session cookie for an admin, sealed with a guessed secret, not idgate's."""
    forger = CookieStore(
        [Secret("a guess at the session secret, 32+ chars")],
        cookie_name=SESSION_COOKIE,
        max_lifetime_seconds=3600,
    )
    claimed = record(subject="alice", provider_sid=None, created_at=time.time())
    [change] = await forger.save(claimed, {}, max_age=3600)
    assert change.value is not None
    return change.value


@pytest.mark.parametrize(
    ("store", "kind"),
    [
        ("cookie", "forged"),
        ("cookie", "tampered"),
        ("cookie", "truncated"),
        ("redis", "tampered"),
        ("redis", "truncated"),
    ],
    indirect=["store"],
)
async def test_broken_session_cookie_is_refused_and_cleared(
    gate: IdgateProcess, http: aiohttp.ClientSession, upstream: EchoUpstream, kind: str
) -> None:
    """A session cookie forged with another secret, altered in one character, or cut short is
    refused with a 401 that clears it, and nothing reaches the tool."""
    if kind == "forged":
        value = await forged()
    else:
        genuine = await sign_in(http, gate, "alice")
        assert (await get(gate.url + PROTECTED_PATH, {SESSION_COOKIE: genuine})).status == 200
        value = tampered(genuine) if kind == "tampered" else genuine[: len(genuine) // 2]
    calls = upstream.calls

    answer = await get(gate.url + PROTECTED_PATH, {SESSION_COOKIE: value})

    assert_refused_session(answer)
    assert upstream.calls == calls


async def test_replayed_state_is_refused_and_its_cookie_cleared(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """A callback URL and state cookie used once already (say, from a browser history and a
    stolen cookie) do not sign in a second time."""
    authorization = await authorize(http, gate, "alice")
    state = authorization.state_cookie
    async with http.get(authorization.callback_url, allow_redirects=False) as resp:
        assert resp.status == 302
    failures = await gate.metric("idgate_logins_total", result="invalid_state")

    answer = await get(authorization.callback_url, {state.key: state.value})

    assert answer.status == 401
    assert_cleared(answer, state.key, path=CALLBACK_PATH)
    assert SESSION_COOKIE not in answer.cookies
    assert await gate.metric("idgate_logins_total", result="invalid_state") == failures + 1


async def test_forged_state_is_refused_and_the_real_sign_in_still_completes(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """A callback whose state was swapped for a made-up one is refused and the cookie that state
    names is cleared; the browser's genuine sign-in is not used up by the attempt."""
    authorization = await authorize(http, gate, "alice")
    state = authorization.state_cookie
    forged_url = with_state(authorization.callback_url, "made-up-state-0123456789abcdefghij")

    answer = await get(forged_url, {state.key: state.value})

    assert answer.status == 401
    [cleared] = answer.cookies.keys()
    assert cleared.startswith(STATE_COOKIE_PREFIX)
    assert cleared != state.key
    assert_cleared(answer, cleared, path=CALLBACK_PATH)
    assert (await get(authorization.callback_url, {state.key: state.value})).status == 302


async def test_state_cookie_of_another_sign_in_is_refused(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """A callback completes only with the state cookie of its own sign-in: another sign-in's
    cookie, under its own name or copied under this one's, gets a 401 that clears this one's."""
    mine = await authorize(http, gate, "alice")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_browser:
        other = (await authorize(other_browser, gate, "bob")).state_cookie
    name = mine.state_cookie.key
    assert other.key != name

    for cookies in ({other.key: other.value}, {name: other.value}):
        answer = await get(mine.callback_url, cookies)
        assert answer.status == 401
        assert_cleared(answer, name, path=CALLBACK_PATH)
        assert SESSION_COOKIE not in answer.cookies

    assert (await get(mine.callback_url, {name: mine.state_cookie.value})).status == 302


@pytest.mark.parametrize("store", ["redis"], indirect=True)
async def test_session_cookie_copied_before_sign_out_is_refused_with_redis(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """With the Redis store, signing out deletes the session server side: a copy of the cookie
    taken while it worked is refused afterwards (and cleared)."""
    copy = await sign_in(http, gate, "alice")
    assert (await get(gate.url + PROTECTED_PATH, {SESSION_COOKIE: copy})).status == 200

    async with http.get(f"{gate.url}/oauth2/sign_out", allow_redirects=False) as resp:
        assert resp.status == 302, "on to the provider's end-session endpoint"
        assert "post_logout_redirect_uri=" in resp.headers["Location"]
        assert resp.cookies[SESSION_COOKIE]["max-age"] == "0"

    assert_refused_session(await get(gate.url + PROTECTED_PATH, {SESSION_COOKIE: copy}))


async def test_session_too_large_for_cookies_is_refused_naming_redis_and_nothing_is_kept(
    gate: IdgateProcess, http: aiohttp.ClientSession, upstream: EchoUpstream
) -> None:
    """A user in 1,500 groups makes a session too large for the cookie store's 8 cookies: the
    callback answers a 500 page naming the fix, logs and counts it for the operator, with no
    credential in the page or the log, writes no session cookie (only the spent state's
    deletion), and idgate goes on serving others."""
    authorization = await authorize(http, gate, MANY_GROUPS_USER)
    code = dict(parse_qsl(urlsplit(authorization.callback_url).query))["code"]

    async with http.get(
        authorization.callback_url, headers={"Accept": "text/html"}, allow_redirects=False
    ) as resp:
        page = await resp.text()
        assert resp.status == 500
        assert "Location" not in resp.headers
        assert list(resp.cookies) == [authorization.state_cookie.key]
        assert resp.cookies[authorization.state_cookie.key]["max-age"] == "0"
    assert "more than the cookie store&#x27;s 8: use session.store: redis." in page
    decision = await gate.wait_for_decision(CALLBACK_PATH)
    assert decision["status"] == 500
    assert "sign-in refused: " in gate.output()
    assert "use session.store: redis" in gate.output()
    assert await gate.metric("idgate_logins_total", result="session_too_large") == 1
    for text in (page, gate.output()):
        assert "Traceback" not in text
        assert "eyJ" not in text, "a JWT (the ID token)"
        assert code not in text
        assert authorization.state_cookie.value not in text
        assert "sg-contoso-app-" not in text, "a group claim"
    assert [cookie.key for cookie in http.cookie_jar if cookie.key.startswith(SESSION_COOKIE)] == []
    assert upstream.calls == 0

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other_browser:
        alice = await sign_in(other_browser, gate, "alice")
    answer = await get(gate.url + PROTECTED_PATH, {SESSION_COOKIE: alice})
    assert answer.status == 200
    assert answer.body["headers"]["x-authenticated-user"] == "alice"


@pytest.mark.parametrize("store", ["redis"], indirect=True)
async def test_session_too_large_for_cookies_signs_in_with_redis(
    gate: IdgateProcess, http: aiohttp.ClientSession
) -> None:
    """The same user signs in with the Redis store: the cookie holds only a ticket, and the
    session it opens has all 1,500 groups."""
    ticket = await sign_in(http, gate, MANY_GROUPS_USER)

    answer = await get(f"{gate.url}/oauth2/userinfo", {SESSION_COOKIE: ticket})

    assert answer.status == 200
    assert answer.body["user"] == MANY_GROUPS_USER
    assert answer.body["source"] == "session"
    assert len(answer.body["groups"]) == MANY_GROUPS
