"""An ID token from the real provider never opens a route, unless the operator opted in by name.

The tokens come from a browserless sign-in at the provider as idgate's own client ("idgate"):
the code flow with PKCE and a nonce, exactly as idgate runs it, asking for the API resource
(RFC 8707) so the same sign-in also yields a JWT access token for the API.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import jwt
import pytest

from tests.e2e.conftest import API_AUDIENCE, OidcProvider
from tests.e2e.idgate_process import (
    CLIENT_SECRET,
    SECRET_ENVIRONMENT,
    IdgateProcess,
    base_document,
    running_idgate,
)
from tests.e2e.provider_login import log_in
from tests.support.issuer import s256
from tests.support.upstream import EchoUpstream

CLIENT_ID: Final = "idgate"
#: Registered for the web client, never listened on: the sign-in stops at the redirect to it.
REDIRECT_URI: Final = "http://127.0.0.1:9/oauth2/callback"
PATH: Final = "/api/orders"
CHECK_TIMEOUT: Final = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedIn:
    """What the token endpoint answered the sign-in with."""

    id_token: str
    access_token: str


async def sign_in_at_provider(provider: OidcProvider, username: str) -> SignedIn:
    """Sign in as `username` at the provider as idgate's client, asking for the API resource."""
    verifier = secrets.token_urlsafe(48)
    query = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": "openid email groups api:read",
        "redirect_uri": REDIRECT_URI,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "resource": API_AUDIENCE,
    }
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        start = f"{provider.issuer}/auth?{urlencode(query)}"
        back = await log_in(http, start, username=username, back_to=REDIRECT_URI)
        form = {
            "grant_type": "authorization_code",
            "code": parse_qs(urlsplit(back).query)["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "resource": API_AUDIENCE,
        }
        auth = {"Authorization": aiohttp.encode_basic_auth(CLIENT_ID, CLIENT_SECRET)}
        async with http.post(f"{provider.issuer}/token", data=form, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
    return SignedIn(id_token=body["id_token"], access_token=body["access_token"])


@pytest.fixture
async def signed_in(module_oidc_provider: OidcProvider) -> SignedIn:
    """alice's tokens from a sign-in as idgate's client."""
    await module_oidc_provider.configure_web_client(redirect_uris=[REDIRECT_URI])
    return await sign_in_at_provider(module_oidc_provider, "alice")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def document(provider: OidcProvider, upstream: EchoUpstream, **oidc: Any) -> dict[str, Any]:
    """The e2e config (audiences: the API) with `oidc` keys changed; a None value removes one."""
    allow = {"authenticated": True}
    routes = [{"name": "api", "path": "/api", "upstream": upstream.url, "allow": allow}]
    config = base_document(provider.issuer, routes)
    changed = config["oidc"] | oidc
    config["oidc"] = {key: value for key, value in changed.items() if value is not None}
    return config


@pytest.fixture
def gate(
    request: pytest.FixtureRequest,
    module_oidc_provider: OidcProvider,
    upstream: EchoUpstream,
    tmp_path: Path,
) -> Iterator[IdgateProcess]:
    """An idgate with the `oidc` keys the test names (indirect parameter) over the e2e config."""
    oidc: dict[str, Any] = getattr(request, "param", {})
    with running_idgate(tmp_path, document(module_oidc_provider, upstream, **oidc)) as process:
        yield process


async def status_and_failure(
    http: aiohttp.ClientSession, gate: IdgateProcess, token: str
) -> tuple[int, str | None]:
    """The status of a bearer request through idgate, and the token failure it logged."""
    path = f"{PATH}/{secrets.token_hex(8)}"
    async with http.get(gate.url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
        status = resp.status
    line = await gate.wait_for_decision(path)
    return status, line.get("token_failure")


async def test_the_provider_issues_an_id_token_for_the_client_and_an_api_access_token(
    signed_in: SignedIn,
) -> None:
    """The sign-in's ID token is for idgate with its nonce and no `typ: at+jwt`; its access token
    is a JWT for the API marked `typ: at+jwt` (what the tests below rely on)."""
    id_claims = jwt.decode(signed_in.id_token, options={"verify_signature": False})
    access_claims = jwt.decode(signed_in.access_token, options={"verify_signature": False})

    assert id_claims["aud"] == CLIENT_ID
    assert "nonce" in id_claims
    assert jwt.get_unverified_header(signed_in.id_token).get("typ") != "at+jwt"
    assert access_claims["aud"] == API_AUDIENCE
    assert "nonce" not in access_claims
    assert jwt.get_unverified_header(signed_in.access_token)["typ"] == "at+jwt"


@pytest.mark.parametrize(
    "gate", [{}, {"audiences": None}], ids=["api-audience", "no-audiences"], indirect=True
)
async def test_the_id_token_is_refused_as_an_id_token(
    gate: IdgateProcess, upstream: EchoUpstream, signed_in: SignedIn, http: aiohttp.ClientSession
) -> None:
    """The ID token as a bearer token: 401 with token failure id_token, with the API audience
    configured and with none, and never written to the log."""
    assert await status_and_failure(http, gate, signed_in.id_token) == (401, "id_token")
    assert upstream.calls == 0
    output = gate.output()
    assert signed_in.id_token not in output
    assert signed_in.id_token.split(".")[1] not in output


async def test_the_access_token_from_the_same_sign_in_opens_the_route(
    gate: IdgateProcess, upstream: EchoUpstream, signed_in: SignedIn, http: aiohttp.ClientSession
) -> None:
    """The sign-in's access token for the API resource is a bearer credential: 200."""
    assert await status_and_failure(http, gate, signed_in.access_token) == (200, None)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "alice", "aud": API_AUDIENCE, "nonce": "n-0S6_WzA2Mj"},
        {"sub": "alice", "aud": [API_AUDIENCE, CLIENT_ID]},
    ],
    ids=["nonce", "client-beside-api"],
)
async def test_a_provider_signed_id_token_for_the_api_audience_is_refused(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    module_oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
    claims: dict[str, Any],
) -> None:
    """A token the provider signed for the API audience that carries a nonce, or that names
    idgate's client beside the API (a provider copying a client's audiences into ID tokens), is
    refused as an ID token."""
    token = await module_oidc_provider.sign(claims, typ="JWT")

    assert await status_and_failure(http, gate, token) == (401, "id_token")
    assert upstream.calls == 0


@pytest.mark.parametrize("gate", [{"require_access_token_type": True}], indirect=True)
async def test_a_required_access_token_type_refuses_typ_jwt(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    module_oidc_provider: OidcProvider,
    signed_in: SignedIn,
    http: aiohttp.ClientSession,
) -> None:
    """With `require_access_token_type`, the provider's at+jwt access token passes; a token it
    signed for the API as `typ: JWT`, and the ID token (no `typ`), are refused with token failure
    token_type."""
    typ_jwt = await module_oidc_provider.sign({"sub": "alice", "aud": API_AUDIENCE}, typ="JWT")

    assert await status_and_failure(http, gate, signed_in.access_token) == (200, None)
    assert await status_and_failure(http, gate, typ_jwt) == (401, "token_type")
    assert await status_and_failure(http, gate, signed_in.id_token) == (401, "token_type")


@pytest.mark.parametrize(
    "gate",
    [
        {"audiences": None, "accept_client_id_audience": True},
        {"audiences": [API_AUDIENCE, CLIENT_ID], "accept_client_id_audience": True},
    ],
    ids=["client-only", "api-and-client"],
    indirect=True,
)
async def test_the_opt_in_accepts_the_id_token_and_is_warned_about(
    gate: IdgateProcess, upstream: EchoUpstream, signed_in: SignedIn, http: aiohttp.ClientSession
) -> None:
    """`accept_client_id_audience` restores the old behaviour (the ID token opens the route, with
    `client_id` alone or listed beside the API); `idgate check` passes with a warning naming the
    option, and `idgate serve` logs it."""
    assert await status_and_failure(http, gate, signed_in.id_token) == (200, None)

    check = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "proxy", "check", "-c", str(gate.config_path)),
        env={"PATH": "/usr/bin:/bin"} | SECRET_ENVIRONMENT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            out, err = await check.communicate()
    finally:
        if check.returncode is None:
            check.kill()
            await check.wait()
    assert check.returncode == 0
    assert out.decode().startswith(f"{gate.config_path}: ok")
    warning = f"{gate.config_path}: warning: oidc.accept_client_id_audience: bearer tokens for"
    assert err.decode().startswith(warning)
    logged = [entry.get("msg", "") for entry in gate.log_entries()]
    assert any(msg.startswith("config: oidc.accept_client_id_audience:") for msg in logged)
