"""Step-up per route in one process: `step_up` routes against sessions, bearer tokens and the
forward-auth endpoint, and the sign-in that a step-up starts, with the fake issuer."""

from __future__ import annotations

import ipaddress
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from pytest_aiohttp import AiohttpServer

from proxy.config.model import Policy, Route, Rule, StepUp
from tests.support.gate import Gate, StartGate
from tests.support.issuer import FakeIssuer, SigningKey
from tests.support.signed_in import HTML, SESSION, cookie_header, set_cookies, sign_in
from tests.support.upstream import serve_echo

MFA = "urn:idgate:mfa"
ANYONE = Policy(allow=Rule(authenticated=True))
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def routes(upstream: str) -> tuple[Route, ...]:
    return (
        Route(
            name="vault",
            path="/vault",
            upstream=upstream,
            policy=ANYONE,
            step_up=StepUp(max_age_seconds=60, acr_values=(MFA,)),
        ),
        Route(
            name="recent",
            path="/recent",
            upstream=upstream,
            policy=ANYONE,
            step_up=StepUp(max_age_seconds=60),
        ),
        Route(
            name="keys",
            path="/keys",
            upstream=upstream,
            policy=ANYONE,
            step_up=StepUp(amr=frozenset({"hwk", "otp"})),
        ),
        Route(name="check-only", path="/check-only", policy=ANYONE),
        Route(name="home", path="/", upstream=upstream, policy=ANYONE),
    )


@pytest.fixture
async def gate(aiohttp_server: AiohttpServer, start_gate: StartGate) -> Gate:
    """idgate with the step-up routes; its loopback peer is a trusted gateway for /oauth2/auth."""
    issuer = FakeIssuer(keys=[SigningKey(kid="k1")])
    issuer.userinfo_claims = {"email": "alice@example.com", "groups": ["admins"]}
    upstream = await serve_echo(aiohttp_server)
    gate = await start_gate(issuer=issuer, routes=routes(upstream.url), trusted_proxies=LOOPBACK)
    gate.upstream = upstream
    return gate


def signed_in_at(gate: Gate, seconds_ago: float, **claims: object) -> None:
    """The issuer's next ID tokens say the user authenticated `seconds_ago`, with `claims`."""
    gate.issuer.id_token_claims = {"auth_time": int(time.time() - seconds_ago), **claims}


async def test_a_fresh_strong_sign_in_passes_the_route(gate: Gate) -> None:
    """A session whose ID token has a recent auth_time and the route's acr reaches the route."""
    signed_in_at(gate, 5, acr=MFA)
    cookies = await sign_in(gate, "/")
    response = await gate.client.get("/vault/x", headers=cookie_header(cookies))
    assert response.status == 200


async def test_an_old_sign_in_sends_the_browser_back_to_sign_in(gate: Gate) -> None:
    """A two-minute-old sign-in on a `max_age: 60` route is redirected to sign in again, with
    the session left in place (it is good for other routes)."""
    signed_in_at(gate, 120, acr=MFA)
    cookies = await sign_in(gate, "/")
    response = await gate.client.get(
        "/vault/x?a=1", headers={**HTML, **cookie_header(cookies)}, allow_redirects=False
    )
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/oauth2/start"
    assert parse_qs(location.query)["rd"] == [
        f"http://{gate.client.host}:{gate.client.port}/vault/x?a=1"
    ]
    assert SESSION not in set_cookies(response)
    elsewhere = await gate.client.get("/home", headers=cookie_header(cookies))
    assert elsewhere.status == 200


async def test_an_api_client_gets_the_rfc_9470_challenge(gate: Gate) -> None:
    """Without `Accept: text/html` an unmet step-up is 401 insufficient_user_authentication,
    naming the route's acr_values and max_age."""
    signed_in_at(gate, 120)
    cookies = await sign_in(gate, "/")
    response = await gate.client.get("/vault", headers=cookie_header(cookies))
    assert response.status == 401
    assert (await response.json())["reason"] == "step_up"
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="idgate", error="insufficient_user_authentication", '
        'error_description="A more recent or stronger sign-in is required", '
        f'acr_values="{MFA}", max_age="60"'
    )


async def test_the_step_up_sign_in_asks_for_max_age_and_acr_values(gate: Gate) -> None:
    """Starting a sign-in for a step-up route asks the provider for its max_age and acr_values;
    for another route it asks for neither."""
    stepped = await gate.client.get("/oauth2/start?rd=/vault/x", allow_redirects=False)
    query = parse_qs(urlsplit(stepped.headers["Location"]).query)
    assert query["max_age"] == ["60"]
    assert query["acr_values"] == [MFA]
    plain = await gate.client.get("/oauth2/start?rd=/home", allow_redirects=False)
    query = parse_qs(urlsplit(plain.headers["Location"]).query)
    assert "max_age" not in query
    assert "acr_values" not in query


async def test_a_step_up_sign_in_replaces_the_session(gate: Gate) -> None:
    """Signing in again through the route's step-up gives a new session that passes it."""
    signed_in_at(gate, 120)
    old = await sign_in(gate, "/")
    signed_in_at(gate, 1, acr=MFA)
    new = await sign_in(gate, "/vault/x")
    assert new[SESSION].value != old[SESSION].value
    response = await gate.client.get("/vault/x", headers=cookie_header(new))
    assert response.status == 200


async def step_up_callback(gate: Gate, cookies: SimpleCookie) -> tuple[int, SimpleCookie]:
    """A sign-in started for /vault, finished with the issuer's current ID token claims."""
    started = await gate.client.get(
        "/oauth2/start?rd=/vault", headers=cookie_header(cookies), allow_redirects=False
    )
    location = started.headers["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = gate.issuer.authorize(location)
    jar = SimpleCookie()
    jar.update(cookies)
    jar.update(set_cookies(started))
    finished = await gate.client.get(
        f"/oauth2/callback?code={code}&state={state}",
        headers={**HTML, **cookie_header(jar)},
        allow_redirects=False,
    )
    return finished.status, set_cookies(finished)


async def test_a_weaker_acr_from_the_provider_fails_the_sign_in(gate: Gate) -> None:
    """A step-up sign-in answered with another acr (as when the user edits acr_values in the
    URL) is refused at the callback, counted, and the old session is kept."""
    signed_in_at(gate, 120)
    old = await sign_in(gate, "/")
    signed_in_at(gate, 1, acr="urn:idgate:password")
    status, changes = await step_up_callback(gate, old)
    assert status == 401
    assert SESSION not in changes
    assert gate.metric("idgate_logins_total", result="step_up_unmet") == 1
    still = await gate.client.get("/home", headers=cookie_header(old))
    assert still.status == 200


async def test_max_age_needs_auth_time_in_the_id_token(gate: Gate) -> None:
    """OIDC Core 2: an ID token answering a max_age request without auth_time fails sign-in."""
    gate.issuer.id_token_claims = {"acr": MFA}
    status, changes = await step_up_callback(gate, SimpleCookie())
    assert status == 401
    assert SESSION not in changes


async def test_acr_from_userinfo_does_not_count(gate: Gate) -> None:
    """Only the ID token vouches for the sign-in: an acr that only userinfo states is ignored."""
    signed_in_at(gate, 1)
    gate.issuer.userinfo_claims = {"email": "alice@example.com", "acr": MFA}
    cookies = await sign_in(gate, "/")
    response = await gate.client.get("/vault", headers=cookie_header(cookies))
    assert response.status == 401
    # The session itself holds (it opens /home); the route's step-up is what it misses.
    assert (await response.json())["reason"] == "step_up"
    assert (await gate.client.get("/home", headers=cookie_header(cookies))).status == 200


async def test_amr_needs_one_of_the_listed_methods(gate: Gate) -> None:
    """An `amr` step-up passes when the ID token's amr holds one of the listed methods."""
    signed_in_at(gate, 1, amr=["pwd"])
    weak = await sign_in(gate, "/")
    assert (await gate.client.get("/keys", headers=cookie_header(weak))).status == 401
    signed_in_at(gate, 1, amr=["pwd", "otp"])
    strong = await sign_in(gate, "/")
    assert (await gate.client.get("/keys", headers=cookie_header(strong))).status == 200


async def test_bearer_tokens_are_held_to_their_own_claims(gate: Gate) -> None:
    """A bearer token passes a step-up route with a recent auth_time and the acr, and gets the
    RFC 9470 challenge without them."""
    now = int(time.time())
    good = gate.bearer(auth_time=now - 5, acr=MFA)
    assert (await gate.client.get("/vault", headers=good)).status == 200
    stale = await gate.client.get("/vault", headers=gate.bearer(auth_time=now - 120, acr=MFA))
    assert stale.status == 401
    assert 'error="insufficient_user_authentication"' in stale.headers["WWW-Authenticate"]
    bare = await gate.client.get("/recent", headers=gate.bearer())
    assert bare.status == 401


async def test_forward_auth_applies_the_same_rule(gate: Gate) -> None:
    """/oauth2/auth answers an unmet step-up with the same 401 challenge and a met one with 202."""
    now = int(time.time())
    headers = {"X-Original-URI": "/vault/x"}
    stale = await gate.client.get(
        "/oauth2/auth", headers={**headers, **gate.bearer(auth_time=now - 120, acr=MFA)}
    )
    assert stale.status == 401
    assert 'max_age="60"' in stale.headers["WWW-Authenticate"]
    fresh = await gate.client.get(
        "/oauth2/auth", headers={**headers, **gate.bearer(auth_time=now - 5, acr=MFA)}
    )
    assert fresh.status == 202
