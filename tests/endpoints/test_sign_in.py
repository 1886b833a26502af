"""Browser sign-in in one process: the code flow against the fake issuer, sessions, sign-out."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse

from proxy.config.model import Secret, SessionSettings
from proxy.runtime import RUNTIME_KEY
from tests.support.gate import Gate, StartGate
from tests.support.issuer import FakeIssuer, SigningKey
from tests.support.settings import SESSION_SECRET
from tests.support.signed_in import HTML, SESSION, cookie_header, set_cookies, sign_in


@pytest.fixture
async def gate(start_gate: StartGate) -> Gate:
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")])
    issuer.userinfo_claims = {"email": "alice@example.com", "groups": ["admins"]}
    return await start_gate(issuer=issuer)


async def test_a_browser_without_a_session_is_sent_to_sign_in(gate: Gate) -> None:
    """A page request without a session is redirected to sign-in with its URL kept."""
    response = await gate.client.get("/admin/tools?tab=1", headers=HTML, allow_redirects=False)
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/oauth2/start"
    assert parse_qs(location.query)["rd"] == [
        f"http://{gate.client.host}:{gate.client.port}/admin/tools?tab=1"
    ]


async def test_an_api_client_without_credentials_gets_401_not_a_redirect(gate: Gate) -> None:
    """Without `Accept: text/html` the same request is a plain 401."""
    response = await gate.client.get("/admin/tools", allow_redirects=False)
    assert response.status == 401


async def test_start_binds_state_pkce_and_nonce_to_the_browser(gate: Gate) -> None:
    """Sign-in starts the code flow with PKCE S256 and a state cookie scoped to the callback."""
    response = await gate.client.get("/oauth2/start?rd=/x", allow_redirects=False)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) >= 43
    assert query["nonce"]
    assert query["redirect_uri"] == ["https://idgate.test/oauth2/callback"]
    ((name, morsel),) = set_cookies(response).items()
    assert name.startswith("__Secure-_idgate_state_")
    assert morsel["path"] == "/oauth2/callback"
    assert morsel["httponly"]
    assert morsel["secure"]
    assert morsel["samesite"] == "Lax"
    assert response.headers["Cache-Control"] == "no-store"


async def test_signed_in_browser_reaches_upstream_with_identity(gate: Gate) -> None:
    """After the code flow the session cookie carries the user; the upstream never sees it."""
    cookies = await sign_in(gate)
    morsel = cookies[SESSION]
    assert morsel["httponly"]
    assert morsel["secure"]
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    response = await gate.client.get("/admin/tools?tab=1", headers=cookie_header(cookies))
    assert response.status == 200
    seen = (await response.json())["headers"]
    assert seen["x-authenticated-user"] == "alice"
    assert seen["x-authenticated-groups"] == "admins"
    assert seen["x-authenticated-email"] == "alice@example.com"
    assert "cookie" not in seen
    info = await gate.client.get("/oauth2/userinfo", headers=cookie_header(cookies))
    assert (await info.json())["source"] == "session"


async def test_every_login_gets_a_new_session_id(gate: Gate) -> None:
    """Signing in again replaces the session cookie with a different one."""
    first = await sign_in(gate)
    second = await sign_in(gate)
    assert first[SESSION].value != second[SESSION].value


async def test_user_without_the_group_gets_the_denied_page(gate: Gate) -> None:
    """A signed-in user outside the route's group sees a 403 page naming route and user."""
    gate.issuer.userinfo_claims = {"email": "bob@example.com", "groups": ["eng"]}
    gate.issuer.subject = "bob"
    cookies = await sign_in(gate)
    response = await gate.client.get("/admin", headers={**HTML, **cookie_header(cookies)})
    assert response.status == 403
    page = await response.text()
    assert "admin" in page
    assert "bob" in page
    assert "/oauth2/sign_out" in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def callback_with_state(gate: Gate, state: str) -> ClientResponse:
    """A real sign-in's callback, its code intact, carrying `state` instead of its own."""
    started = await gate.client.get("/oauth2/start?rd=/x", allow_redirects=False)
    code = gate.issuer.authorize(started.headers["Location"])
    return await gate.client.get(
        f"/oauth2/callback?code={code}&state={state}",
        headers=cookie_header(set_cookies(started)),
        allow_redirects=False,
    )


async def test_a_forged_state_is_refused_and_cleared(gate: Gate) -> None:
    """A callback whose state no cookie of this browser holds is refused with 401, starts no
    session, and clears whatever cookie that state would name."""
    response = await callback_with_state(gate, "forged")
    assert response.status == 401
    changes = set_cookies(response)
    assert SESSION not in changes
    forged = gate.client.app[RUNTIME_KEY].current.login_states.cookie_name("forged")
    assert changes[forged].value == ""
    assert changes[forged]["max-age"] == "0"


async def test_a_callback_without_state_is_a_bad_request(gate: Gate) -> None:
    """A callback with an empty state is malformed (400) and starts no session."""
    response = await callback_with_state(gate, "")
    assert response.status == 400
    assert SESSION not in set_cookies(response)


async def test_a_state_is_single_use(gate: Gate) -> None:
    """Replaying a completed callback with the same state cookie is refused with 401."""
    started = await gate.client.get("/oauth2/start?rd=/x", allow_redirects=False)
    location = started.headers["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    headers = cookie_header(set_cookies(started))
    first = await gate.client.get(
        f"/oauth2/callback?code={gate.issuer.authorize(location)}&state={state}",
        headers=headers,
        allow_redirects=False,
    )
    assert first.status == 302
    replay = await gate.client.get(
        f"/oauth2/callback?code={gate.issuer.authorize(location)}&state={state}",
        headers=headers,
        allow_redirects=False,
    )
    assert replay.status == 401
    cleared = set_cookies(replay)
    assert any(
        name.startswith("__Secure-_idgate_state_") and not m.value for name, m in cleared.items()
    )


@pytest.mark.parametrize("mangle", [lambda v: v[:-10], lambda v: "A" + v[1:], lambda v: "x"])
async def test_a_tampered_session_cookie_is_refused_and_cleared(
    gate: Gate, mangle: Callable[[str], str]
) -> None:
    """A truncated or altered session cookie gets 401 and a Set-Cookie that deletes it."""
    cookies = await sign_in(gate)
    value = cookies[SESSION].value
    response = await gate.client.get("/admin", headers={"Cookie": f"{SESSION}={mangle(value)}"})
    assert response.status == 401
    cleared = set_cookies(response)[SESSION]
    assert cleared.value == ""
    assert cleared["max-age"] == "0"


async def test_sign_out_clears_the_session(gate: Gate) -> None:
    """Sign-out deletes the session cookie and sends the browser to the signed-out page."""
    cookies = await sign_in(gate)
    response = await gate.client.get(
        "/oauth2/sign_out", headers=cookie_header(cookies), allow_redirects=False
    )
    assert response.status == 302
    assert response.headers["Location"] == "https://idgate.test/oauth2/signed_out"
    assert set_cookies(response)[SESSION].value == ""


async def test_sign_out_never_redirects_off_site(gate: Gate) -> None:
    """An `rd` outside public_url's host and the allowed domains is replaced by the signed-out
    page."""
    response = await gate.client.get(
        "/oauth2/sign_out?rd=https://evil.test/", allow_redirects=False
    )
    assert response.headers["Location"] == "https://idgate.test/oauth2/signed_out"


@pytest.fixture
async def refreshing(start_gate: StartGate) -> Gate:
    """A gate whose sessions are due for a refresh at every request."""
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")])
    issuer.userinfo_claims = {"groups": ["admins"]}
    return await start_gate(
        issuer=issuer,
        session=SessionSettings(secrets=(Secret(SESSION_SECRET),), refresh_seconds=0.000001),
    )


async def test_refresh_keeps_the_session_and_rereads_groups(refreshing: Gate) -> None:
    """When the refresh interval has passed, the next request refreshes and re-reads groups."""
    gate, issuer = refreshing, refreshing.issuer
    cookies = await sign_in(gate)
    assert (await gate.client.get("/admin", headers=cookie_header(cookies))).status == 200
    assert gate.metric("idgate_session_refreshes_total", result="success") == 1

    issuer.userinfo_claims = {"groups": ["eng"]}
    response = await gate.client.get("/admin", headers=cookie_header(cookies))
    assert response.status == 403, "groups are re-read at the provider on refresh"


async def test_revoked_user_is_refused_at_the_next_refresh(refreshing: Gate) -> None:
    """A refresh the provider refuses ends the session: 401 and the cookie cleared."""
    gate, issuer = refreshing, refreshing.issuer
    cookies = await sign_in(gate)
    issuer.refresh_revoked = True
    response = await gate.client.get("/admin", headers=cookie_header(cookies))
    assert response.status == 401
    assert set_cookies(response)[SESSION].value == ""
    assert gate.metric("idgate_session_refreshes_total", result="failure") == 1


async def test_a_provider_outage_at_refresh_time_is_503_and_keeps_the_session(
    refreshing: Gate,
) -> None:
    """A refresh the provider cannot answer (down, not refusing) fails closed with 503 and keeps
    the session, so the user is let in again once the provider is back, without signing in."""
    gate, issuer = refreshing, refreshing.issuer
    cookies = await sign_in(gate)
    issuer.down = True
    response = await gate.client.get("/admin", headers=cookie_header(cookies))
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert SESSION not in set_cookies(response), "the session cookie is neither cleared nor reset"
    assert gate.metric("idgate_session_refreshes_total", result="failure") == 1

    issuer.down = False
    response = await gate.client.get("/admin", headers=cookie_header(cookies))
    assert response.status == 200
    assert gate.metric("idgate_session_refreshes_total", result="success") == 1


async def test_backchannel_logout_ends_the_session(gate: Gate) -> None:
    """A provider-signed logout token naming the user's `sub` ends sessions created before it."""
    cookies = await sign_in(gate)
    logout_token = gate.issuer.logout_token(sub="alice", jti="logout-1")
    response = await gate.client.post(
        "/oauth2/backchannel_logout", data={"logout_token": logout_token}
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert (await gate.client.get("/admin", headers=cookie_header(cookies))).status == 401
    replay = await gate.client.post(
        "/oauth2/backchannel_logout", data={"logout_token": logout_token}
    )
    assert replay.status == 400


async def test_a_large_session_is_split_into_cookie_chunks(start_gate: StartGate) -> None:
    """A session too large for one cookie travels in chunks and still opens."""
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")])
    issuer.userinfo_claims = {"groups": ["admins", *(f"team-{n:04}" for n in range(400))]}
    gate = await start_gate(issuer=issuer)
    cookies = await sign_in(gate)
    names = sorted(name for name in cookies if cookies[name].value)
    assert names[:2] == [f"{SESSION}_0", f"{SESSION}_1"]
    assert all(len(cookies[name].value) <= 4000 for name in names)
    response = await gate.client.get("/admin", headers=cookie_header(cookies))
    assert response.status == 200


async def test_without_a_refresh_token_userinfo_vouches_until_refused(refreshing: Gate) -> None:
    """A provider that grants no refresh token is asked at userinfo instead; once it refuses the
    access token (revoked or expired), the session ends."""
    refreshing.issuer.issue_refresh_tokens = False
    cookies = await sign_in(refreshing)
    assert (await refreshing.client.get("/admin", headers=cookie_header(cookies))).status == 200
    refreshing.issuer.revoke_access_tokens()
    response = await refreshing.client.get("/admin", headers=cookie_header(cookies))
    assert response.status == 401
    assert refreshing.metric("idgate_session_refreshes_total", result="failure") == 1
