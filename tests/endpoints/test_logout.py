"""Sign-out against the fake issuer: tokens revoked at the provider, and where the browser goes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse

from tests.support.gate import Gate, StartGate
from tests.support.issuer import FakeIssuer, SigningKey
from tests.support.signed_in import HTML, SESSION, cookie_header, set_cookies, sign_in

PUBLIC_URL = "https://idgate.test"
SIGNED_OUT = PUBLIC_URL + "/oauth2/signed_out"
END_SESSION = "https://provider.test/logout"
REVOCATIONS = "idgate_token_revocations_total"


def issuer(**fields: Any) -> FakeIssuer:
    made = FakeIssuer(keys=[SigningKey(kid="k1")], **fields)
    made.userinfo_claims = {"groups": ["admins"]}
    return made


async def sign_out(gate: Gate, query: str = "") -> ClientResponse:
    """Sign in, then sign out with `query` (`?rd=...`); the sign-out's answer."""
    cookies = await sign_in(gate)
    return await gate.client.get(
        f"/oauth2/sign_out{query}",
        headers={**HTML, **cookie_header(cookies)},
        allow_redirects=False,
    )


def assert_signed_out(response: ClientResponse) -> None:
    """A redirect that deletes the session cookie."""
    assert response.status == 302
    assert set_cookies(response)[SESSION].value == ""


def post_logout_redirect_uri(response: ClientResponse) -> str:
    location = response.headers["Location"]
    assert location.startswith(END_SESSION + "?")
    [value] = parse_qs(urlsplit(location).query)["post_logout_redirect_uri"]
    return value


async def test_sign_out_revokes_the_refresh_and_access_token(start_gate: StartGate) -> None:
    """Sign-out revokes the session's refresh and access token at the provider (RFC 7009): the
    refresh token no longer refreshes there, and both revocations are counted."""
    gate = await start_gate(issuer=issuer())

    response = await sign_out(gate)

    assert_signed_out(response)
    assert gate.issuer.live_refresh_tokens == frozenset()
    hints = sorted(each["token_type_hint"] for each in gate.issuer.revocation_requests)
    assert hints == ["access_token", "refresh_token"]
    assert gate.metric(REVOCATIONS, result="revoked") == 2


async def test_sign_out_without_a_session_revokes_nothing(gate: Gate) -> None:
    """A sign-out without a session cookie has no tokens to revoke and sends nothing."""
    response = await gate.client.get("/oauth2/sign_out", allow_redirects=False)

    assert response.status == 302
    assert gate.issuer.revocation_requests == []
    assert gate.metric(REVOCATIONS, result="revoked") == 0


async def test_a_provider_without_revocation_still_signs_out(start_gate: StartGate) -> None:
    """Without a revocation_endpoint, sign-out ends the session as before and counts the tokens
    it could not revoke as unsupported; the refresh token stays live at the provider."""
    gate = await start_gate(issuer=issuer(offer_revocation=False))

    response = await sign_out(gate)

    assert_signed_out(response)
    assert response.headers["Location"] == SIGNED_OUT
    assert len(gate.issuer.live_refresh_tokens) == 1
    assert gate.metric(REVOCATIONS, result="unsupported") == 2


@pytest.mark.parametrize(("status", "result"), [(503, "unavailable"), (400, "refused")])
async def test_a_failing_revocation_does_not_stop_sign_out(
    start_gate: StartGate, status: int, result: str
) -> None:
    """A revocation endpoint answering an error still lets the sign-out end the session and
    redirect; the failures are counted."""
    gate = await start_gate(
        issuer=issuer(revocation_status=status, revocation_body=b'{"error": "invalid_request"}')
    )

    response = await sign_out(gate, "?rd=/public/bye")

    assert_signed_out(response)
    assert response.headers["Location"] == "/public/bye"
    assert gate.metric(REVOCATIONS, result=result) == 2


async def test_a_relative_rd_reaches_the_provider_as_an_absolute_url(
    start_gate: StartGate,
) -> None:
    """A relative `rd` goes to the end-session endpoint as an absolute URL on public_url, as the
    provider's registered post-logout URIs are."""
    provider = issuer(discovery_overrides={"end_session_endpoint": END_SESSION})
    gate = await start_gate(issuer=provider)

    response = await sign_out(gate, "?rd=/public/bye%3Fsee=you")

    assert_signed_out(response)
    assert post_logout_redirect_uri(response) == PUBLIC_URL + "/public/bye?see=you"


@pytest.mark.parametrize(
    ("rd", "expected"),
    [
        ("https://tools.example.com/", "https://tools.example.com/"),
        ("https://tools.example.com:8443/", SIGNED_OUT),
        ("https://idgate.test:9/", SIGNED_OUT),
        ("https://idgate.test:443/x", "https://idgate.test:443/x"),
        ("https://reports.example.com:8443/", "https://reports.example.com:8443/"),
    ],
)
async def test_sign_out_refuses_another_port_unless_allowed(
    start_gate: StartGate, rd: str, expected: str
) -> None:
    """An `rd` on another port of public_url's host or of an allowed domain is another origin
    and falls back to the signed-out page; an entry naming the port allows it."""
    provider = issuer(discovery_overrides={"end_session_endpoint": END_SESSION})
    gate = await start_gate(
        issuer=provider,
        allowed_redirect_domains=("tools.example.com", "reports.example.com:8443"),
    )

    response = await sign_out(gate, f"?rd={rd}")

    assert post_logout_redirect_uri(response) == expected


async def test_sign_in_refuses_a_return_to_another_port(start_gate: StartGate) -> None:
    """A sign-in started with `rd` on public_url's host at another port ends on "/" instead."""
    gate = await start_gate(issuer=issuer())
    started = await gate.client.get(
        "/oauth2/start?rd=https://idgate.test:9/", allow_redirects=False, headers=HTML
    )
    location = started.headers["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = gate.issuer.authorize(location)

    finished = await gate.client.get(
        f"/oauth2/callback?code={code}&state={state}",
        allow_redirects=False,
        headers={**HTML, **cookie_header(set_cookies(started))},
    )

    assert finished.status == 302
    assert finished.headers["Location"] == "/"
