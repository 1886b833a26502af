"""The dev issuer: sign-in page, code flow with PKCE, refresh, client credentials, logout."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from proxy.demo.directory import DemoClient
from proxy.demo.issuer import DevIssuer, IssuerSettings

ISSUER = "http://issuer.test"
REDIRECT_URI = "http://127.0.0.1:4180/oauth2/callback"
SIGNED_OUT = "http://127.0.0.1:4180/"
WEB = DemoClient(
    client_id="web",
    secret="web-secret",
    redirect_uris=frozenset({REDIRECT_URI}),
    post_logout_redirect_uris=frozenset({SIGNED_OUT}),
)
OTHER = DemoClient(
    client_id="other",
    secret="other-secret",
    redirect_uris=frozenset({REDIRECT_URI}),
)
SERVICE = DemoClient(
    client_id="svc", secret="svc-secret", client_credentials=True, service_groups=("services",)
)
AUDIENCES = ("demo-api", "web")


def basic(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic (RFC 6749 2.3.1): these ids and secrets need no form-encoding."""
    return {"Authorization": aiohttp.encode_basic_auth(client_id, secret)}


WEB_AUTH = basic("web", "web-secret")
VERIFIER = "v" * 43 + secrets.token_urlsafe(20)

Client = TestClient[Any, Any]


def challenge(verifier: str) -> str:
    """RFC 7636 4.2 S256, written out independently of the issuer's code."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "web",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": "the-state",
        "nonce": "the-nonce",
        "code_challenge": challenge(VERIFIER),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {name: value for name, value in params.items() if value is not None}


@pytest.fixture
async def issuer(aiohttp_client: Any) -> Client:
    settings = IssuerSettings(url=ISSUER, clients=(WEB, OTHER, SERVICE), audiences=AUDIENCES)
    client: Client = await aiohttp_client(DevIssuer(settings).app())
    return client


async def sign_in(issuer: Client, user: str = "alice", **overrides: str | None) -> URL:
    """Press the user's button on the sign-in page; where the issuer sends the browser."""
    form = {**authorization(**overrides), "user": user}
    response = await issuer.post("/authorize", data=form, allow_redirects=False)
    assert response.status == 302
    return URL(response.headers["Location"])


async def token_request(
    issuer: Client, form: dict[str, str], auth: dict[str, str] | None = WEB_AUTH
) -> tuple[int, dict[str, Any]]:
    response = await issuer.post("/token", data=form, headers=auth)
    body: dict[str, Any] = await response.json()
    return response.status, body


async def exchange(issuer: Client, code: str, **overrides: str) -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
        **overrides,
    }
    return await token_request(issuer, form)


async def signed_in_tokens(issuer: Client, user: str = "alice") -> dict[str, Any]:
    code = (await sign_in(issuer, user)).query["code"]
    status, tokens = await exchange(issuer, code)
    assert status == 200, tokens
    return tokens


async def verify(issuer: Client, token: str, *, audience: str) -> dict[str, Any]:
    keys = jwt.PyJWKSet.from_dict(await (await issuer.get("/jwks")).json())
    kid = jwt.get_unverified_header(token)["kid"]
    claims: dict[str, Any] = jwt.decode(
        token, keys[kid], algorithms=["ES256"], audience=audience, issuer=ISSUER
    )
    return claims


async def test_discovery_names_every_endpoint_and_only_s256(issuer: Client) -> None:
    """Discovery names the issuer, every endpoint under it, S256 PKCE and client_secret_basic."""
    document = await (await issuer.get("/.well-known/openid-configuration")).json()
    assert document["issuer"] == ISSUER
    for name, path in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("end_session_endpoint", "/end_session"),
    ]:
        assert document[name] == ISSUER + path
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]


async def test_sign_in_page_lists_the_users_and_says_dev_only(issuer: Client) -> None:
    """The sign-in page shows the dev-only banner and a button for each user with their groups."""
    response = await issuer.get("/authorize", params=authorization())
    assert response.status == 200
    page = await response.text()
    assert "DEV ONLY" in page
    for user, group in [("alice", "admins"), ("bob", "engineering"), ("carol", "sales")]:
        assert f'name="user" value="{user}"' in page
        assert group in page
    assert 'value="the-state"' in page
    assert "form-action 'self' http://127.0.0.1:4180" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "http://127.0.0.1:4180/elsewhere"},
        {"redirect_uri": "http://evil.test/oauth2/callback"},
        {"redirect_uri": None},
        {"client_id": "unknown"},
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_unregistered_redirect_or_client_is_refused_without_redirect(
    issuer: Client, overrides: dict[str, str | None], method: str
) -> None:
    """An unregistered redirect URI or client gets the issuer's error page, never a redirect."""
    params = authorization(**overrides)
    if method == "GET":
        response = await issuer.get("/authorize", params=params, allow_redirects=False)
    else:
        form = {**params, "user": "alice"}
        response = await issuer.post("/authorize", data=form, allow_redirects=False)
    assert response.status == 400
    assert "Location" not in response.headers
    assert "DEV ONLY" in await response.text()


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge": None},
        {"code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge": "too-short"},
    ],
)
async def test_pkce_s256_is_required(issuer: Client, overrides: dict[str, str | None]) -> None:
    """Without an S256 code challenge the client hears invalid_request at its redirect URI."""
    response = await issuer.get(
        "/authorize", params=authorization(**overrides), allow_redirects=False
    )
    assert response.status == 302
    location = URL(response.headers["Location"])
    assert str(location.with_query(None)) == REDIRECT_URI
    assert location.query["error"] == "invalid_request"
    assert location.query["state"] == "the-state"
    assert "code" not in location.query


async def test_scope_without_openid_is_refused(issuer: Client) -> None:
    """An authorization request without the openid scope is sent back as invalid_scope."""
    response = await issuer.get(
        "/authorize", params=authorization(scope="email"), allow_redirects=False
    )
    assert URL(response.headers["Location"]).query["error"] == "invalid_scope"


async def test_code_flow_issues_verifiable_tokens(issuer: Client) -> None:
    """The code comes back with state and iss; the tokens name alice, her groups, nonce and sid."""
    location = await sign_in(issuer, "alice")
    assert str(location.with_query(None)) == REDIRECT_URI
    assert location.query["state"] == "the-state"
    assert location.query["iss"] == ISSUER

    status, tokens = await exchange(issuer, location.query["code"])
    assert status == 200
    assert tokens["token_type"] == "Bearer"
    id_token = await verify(issuer, tokens["id_token"], audience="web")
    assert id_token["sub"] == "alice"
    assert id_token["nonce"] == "the-nonce"
    assert id_token["groups"] == ["engineering", "admins"]
    assert id_token["email"] == "alice@example.com"
    assert id_token["sid"]
    access = await verify(issuer, tokens["access_token"], audience="demo-api")
    assert access["aud"] == ["demo-api", "web"]
    assert access["sub"] == "alice"
    assert access["groups"] == ["engineering", "admins"]
    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    assert tokens["refresh_token"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_verifier": "w" * 43},
        {"code_verifier": ""},
        {"redirect_uri": "http://127.0.0.1:4180/other"},
    ],
)
async def test_exchange_needs_the_verifier_and_redirect_uri(
    issuer: Client, overrides: dict[str, str]
) -> None:
    """A wrong PKCE verifier or a different redirect URI at the exchange is invalid_grant."""
    code = (await sign_in(issuer)).query["code"]
    status, body = await exchange(issuer, code, **overrides)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_code_is_single_use(issuer: Client) -> None:
    """A code redeemed once is refused the second time."""
    code = (await sign_in(issuer)).query["code"]
    first, _ = await exchange(issuer, code)
    second, body = await exchange(issuer, code)
    assert (first, second, body["error"]) == (200, 400, "invalid_grant")


async def test_code_is_bound_to_its_client(issuer: Client) -> None:
    """A code issued to one client is worthless to another, even with the right verifier."""
    code = (await sign_in(issuer)).query["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
    }
    status, body = await token_request(issuer, form, auth=basic("other", "other-secret"))
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("auth", [basic("web", "wrong"), basic("nobody", "web-secret"), None])
async def test_token_endpoint_requires_client_secret_basic(
    issuer: Client, auth: dict[str, str] | None
) -> None:
    """A wrong or missing client secret gets 401 invalid_client with a Basic challenge."""
    code = (await sign_in(issuer)).query["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
        "client_id": "web",
    }
    response = await issuer.post("/token", data=form, headers=auth)
    assert response.status == 401
    assert (await response.json())["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


async def test_refresh_rotates_the_refresh_token(issuer: Client) -> None:
    """A refresh returns new tokens for the same user and sign-in; the old refresh token is dead."""
    tokens = await signed_in_tokens(issuer, "bob")
    first_sid = (await verify(issuer, tokens["id_token"], audience="web"))["sid"]
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    status, refreshed = await token_request(issuer, form)
    assert status == 200
    id_token = await verify(issuer, refreshed["id_token"], audience="web")
    assert (id_token["sub"], id_token["sid"]) == ("bob", first_sid)
    assert "nonce" not in id_token
    assert refreshed["refresh_token"] != tokens["refresh_token"]

    again, body = await token_request(issuer, form)
    assert (again, body["error"]) == (400, "invalid_grant")


async def test_refresh_token_is_bound_to_its_client(issuer: Client) -> None:
    """Another client cannot use a refresh token issued to the web client."""
    tokens = await signed_in_tokens(issuer)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    status, body = await token_request(issuer, form, auth=basic("other", "other-secret"))
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_client_credentials_for_the_service_client(issuer: Client) -> None:
    """The service client gets an access token naming itself and its groups, nothing else."""
    form = {"grant_type": "client_credentials"}
    status, tokens = await token_request(issuer, form, auth=basic("svc", "svc-secret"))
    assert status == 200
    assert set(tokens) == {"access_token", "token_type", "expires_in", "scope"}
    access = await verify(issuer, tokens["access_token"], audience="demo-api")
    assert (access["sub"], access["groups"], access["client_id"]) == ("svc", ["services"], "svc")


async def test_client_credentials_only_for_clients_allowed_it(issuer: Client) -> None:
    """The browser client may not use client_credentials."""
    status, body = await token_request(issuer, {"grant_type": "client_credentials"})
    assert (status, body["error"]) == (400, "unauthorized_client")


async def test_unknown_grant_type(issuer: Client) -> None:
    """A grant type the issuer does not offer is unsupported_grant_type."""
    status, body = await token_request(issuer, {"grant_type": "password"})
    assert (status, body["error"]) == (400, "unsupported_grant_type")


async def test_userinfo_returns_the_users_claims(issuer: Client) -> None:
    """Userinfo answers a user's access token with the user's profile and groups."""
    tokens = await signed_in_tokens(issuer, "carol")
    response = await issuer.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status == 200
    claims = await response.json()
    assert (claims["sub"], claims["email"], claims["groups"]) == (
        "carol",
        "carol@example.com",
        ["sales"],
    )


async def test_userinfo_refuses_other_tokens(issuer: Client) -> None:
    """Userinfo refuses no token, an ID token, a service token and a forged token with 401."""
    tokens = await signed_in_tokens(issuer)
    _, service = await token_request(
        issuer, {"grant_type": "client_credentials"}, auth=basic("svc", "svc-secret")
    )
    header, payload, _ = tokens["access_token"].split(".")
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(b'x' * 64).decode().rstrip('=')}"
    for authorization_header in [
        None,
        f"Bearer {tokens['id_token']}",
        f"Bearer {service['access_token']}",
        f"Bearer {forged}",
    ]:
        headers = {} if authorization_header is None else {"Authorization": authorization_header}
        response = await issuer.get("/userinfo", headers=headers)
        assert response.status == 401
        assert "invalid_token" in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_end_session_returns_to_the_registered_uri(issuer: Client, method: str) -> None:
    """Sign-out with the hint and a registered post-logout URI redirects there with the state."""
    tokens = await signed_in_tokens(issuer)
    params = {
        "id_token_hint": tokens["id_token"],
        "client_id": "web",
        "post_logout_redirect_uri": SIGNED_OUT,
        "state": "bye",
    }
    if method == "GET":
        response = await issuer.get("/end_session", params=params, allow_redirects=False)
    else:
        response = await issuer.post("/end_session", data=params, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == SIGNED_OUT + "?state=bye"


async def test_end_session_revokes_the_sign_ins_refresh_tokens(issuer: Client) -> None:
    """Signing out ends that sign-in at the issuer: its refresh token stops working."""
    tokens = await signed_in_tokens(issuer)
    other_sign_in = await signed_in_tokens(issuer)
    response = await issuer.post("/end_session", data={"id_token_hint": tokens["id_token"]})
    assert response.status == 200
    assert "signed out" in await response.text()
    for refresh_token, expected in [
        (tokens["refresh_token"], 400),
        (other_sign_in["refresh_token"], 200),
    ]:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        status, _ = await token_request(issuer, form)
        assert status == expected


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "web", "post_logout_redirect_uri": "http://evil.test/"},
        {"client_id": "web", "post_logout_redirect_uri": SIGNED_OUT + "x"},
        {"post_logout_redirect_uri": SIGNED_OUT},
        {"client_id": "other", "post_logout_redirect_uri": SIGNED_OUT},
        {"client_id": "nobody", "post_logout_redirect_uri": SIGNED_OUT},
        {"id_token_hint": "not.a.token", "post_logout_redirect_uri": SIGNED_OUT},
    ],
)
async def test_end_session_never_redirects_to_an_unregistered_uri(
    issuer: Client, params: dict[str, str]
) -> None:
    """An unregistered post-logout URI, or one without a known client, gets a page, no redirect."""
    response = await issuer.get("/end_session", params=params, allow_redirects=False)
    assert response.status == 400
    assert "Location" not in response.headers


async def test_end_session_checks_client_id_against_the_hint(issuer: Client) -> None:
    """A hint issued to one client with another client's id is refused."""
    tokens = await signed_in_tokens(issuer)
    params = {
        "id_token_hint": tokens["id_token"],
        "client_id": "other",
        "post_logout_redirect_uri": SIGNED_OUT,
    }
    response = await issuer.post("/end_session", data=params, allow_redirects=False)
    assert response.status == 400
