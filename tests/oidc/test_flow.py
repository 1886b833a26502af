"""The code flow client: PKCE sign-in URLs, code exchange, refresh, userinfo and logout URLs."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from proxy.config.model import OIDCSettings, Secret
from proxy.oidc.discovery import ProviderMetadata, fetch_metadata
from proxy.oidc.flow import (
    MAX_RESPONSE_BYTES,
    CodeFlow,
    FlowError,
    FlowFailure,
    TokenKind,
    TokenSet,
)
from proxy.oidc.id_token import verify_id_token
from tests.support.issuer import FakeClock, FakeIssuer, SigningKey, StaticKeys, s256, serve_issuer

KEY = SigningKey(kid="k1")
REDIRECT_URI = "https://idgate.test/oauth2/callback"
# RFC 3986 2.3 unreserved characters: what state, nonce and code_verifier may be made of.
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")


@dataclasses.dataclass
class World:
    issuer: FakeIssuer
    oidc: OIDCSettings
    metadata: ProviderMetadata
    flow: CodeFlow
    clock: FakeClock
    http: aiohttp.ClientSession

    def flow_with(self, **metadata_changes: Any) -> CodeFlow:
        """A CodeFlow over this provider's metadata with some endpoints changed."""
        metadata = dataclasses.replace(self.metadata, **metadata_changes)
        return CodeFlow(self.oidc, metadata, self.http, clock=self.clock)

    async def sign_in(self) -> tuple[TokenSet, str]:
        """The tokens of a completed sign-in, and the nonce it sent."""
        request = self.flow.authorization_request(redirect_uri=REDIRECT_URI)
        code = self.issuer.authorize(request.url)
        tokens = await self.flow.exchange(
            code, code_verifier=request.code_verifier, redirect_uri=REDIRECT_URI
        )
        return tokens, request.nonce


MakeWorld = Callable[..., Awaitable[World]]


@pytest.fixture
async def world(aiohttp_server: AiohttpServer) -> AsyncIterator[MakeWorld]:
    """A fake provider and a CodeFlow over its discovered metadata."""
    async with aiohttp.ClientSession() as http:

        async def make(issuer: FakeIssuer | None = None, **oidc_overrides: Any) -> World:
            served = await serve_issuer(aiohttp_server, issuer or FakeIssuer(keys=[KEY]))
            values: dict[str, Any] = {"issuer": served.url, "client_id": served.client_id}
            if served.client_secret is not None:
                values["client_secret"] = Secret(served.client_secret)
            oidc = OIDCSettings(**(values | oidc_overrides))
            metadata = await fetch_metadata(http, served.url, timeout=2.0)
            clock = FakeClock()
            flow = CodeFlow(oidc, metadata, http, clock=clock)
            return World(served, oidc, metadata, flow, clock, http)

        yield make


async def flow_failure(call: Awaitable[object]) -> FlowError:
    with pytest.raises(FlowError) as caught:
        await call
    return caught.value


def query_of(url: str) -> dict[str, str]:
    values = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(repeated) == 1 for repeated in values.values())
    return {name: repeated[0] for name, repeated in values.items()}


# --- the authorization request ------------------------------------------------------------------


async def test_the_authorization_url_asks_for_a_code_with_pkce_s256(world: MakeWorld) -> None:
    """The URL asks for a code for this client and redirect, with scopes, state, nonce and S256."""
    w = await world()

    request = w.flow.authorization_request(redirect_uri=REDIRECT_URI)

    assert request.url.startswith(w.issuer.url + "/authorize?")
    assert query_of(request.url) == {
        "response_type": "code",
        "client_id": "idgate",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": s256(request.code_verifier),
        "code_challenge_method": "S256",
    }


async def test_state_nonce_and_verifier_are_long_random_and_url_safe(world: MakeWorld) -> None:
    """State and nonce carry at least 128 bits; the verifier is 43-128 unreserved characters."""
    w = await world()

    first = w.flow.authorization_request(redirect_uri=REDIRECT_URI)
    second = w.flow.authorization_request(redirect_uri=REDIRECT_URI)

    for request in (first, second):
        # 22 characters of a 62-letter alphabet are 131 bits.
        assert len(request.state) >= 22
        assert len(request.nonce) >= 22
        assert 43 <= len(request.code_verifier) <= 128
        for value in (request.state, request.nonce, request.code_verifier):
            assert _UNRESERVED.fullmatch(value)
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier != second.code_verifier


async def test_the_verifier_and_nonce_are_not_in_the_repr(world: MakeWorld) -> None:
    """Logging an AuthorizationRequest shows its URL, not the secrets kept for the callback."""
    w = await world()

    request = w.flow.authorization_request(redirect_uri=REDIRECT_URI)

    assert request.code_verifier not in repr(request)
    assert request.state in repr(request)  # only as part of the URL


async def test_an_authorization_endpoint_with_a_query_keeps_it(world: MakeWorld) -> None:
    """Parameters already in the provider's authorization endpoint are kept beside ours."""
    w = await world()
    flow = w.flow_with(authorization_endpoint=w.issuer.url + "/authorize?p=acme")

    request = flow.authorization_request(redirect_uri=REDIRECT_URI)

    assert query_of(request.url)["p"] == "acme"
    assert query_of(request.url)["response_type"] == "code"


async def test_authorization_params_are_sent_and_a_step_up_replaces_their_acr_values(
    world: MakeWorld,
) -> None:
    """`oidc.authorization_params` ride on every sign-in; a route's step-up acr_values win."""
    w = await world(authorization_params=(("hd", "example.com"), ("acr_values", "basic")))

    plain = query_of(w.flow.authorization_request(redirect_uri=REDIRECT_URI).url)
    stepped = query_of(
        w.flow.authorization_request(redirect_uri=REDIRECT_URI, acr_values=("phr",)).url
    )

    assert (plain["hd"], plain["acr_values"]) == ("example.com", "basic")
    assert (stepped["hd"], stepped["acr_values"]) == ("example.com", "phr")


async def test_a_provider_without_an_authorization_endpoint_cannot_start_a_flow(
    world: MakeWorld,
) -> None:
    """Token-only issuers (no authorization_endpoint) raise FlowError `unsupported`."""
    w = await world()
    flow = w.flow_with(authorization_endpoint=None)

    with pytest.raises(FlowError) as caught:
        flow.authorization_request(redirect_uri=REDIRECT_URI)

    assert caught.value.error is FlowFailure.UNSUPPORTED


# --- the code exchange ---------------------------------------------------------------------------


async def test_a_public_client_exchanges_its_code_with_pkce(world: MakeWorld) -> None:
    """Without a secret, the form names the client and carries the verifier; no Basic header."""
    w = await world()

    tokens, nonce = await w.sign_in()

    assert tokens.access_token
    assert tokens.refresh_token
    assert tokens.expires_at == w.clock.now + 300
    assert tokens.id_token is not None
    claims = await verify_id_token(
        tokens.id_token, oidc=w.oidc, keys=StaticKeys((KEY,)), nonce=nonce
    )
    assert claims["sub"] == "alice"
    [sent] = w.issuer.token_requests
    assert sent["grant_type"] == "authorization_code"
    assert sent["client_id"] == "idgate"
    assert sent["redirect_uri"] == REDIRECT_URI
    assert sent["authorization"] == ""


async def test_a_confidential_client_authenticates_with_percent_encoded_basic(
    world: MakeWorld,
) -> None:
    """client_secret_basic encodes id and secret form-style first (RFC 6749 2.3.1), then base64."""
    issuer = FakeIssuer(keys=[KEY], client_id="idgate:web app", client_secret="s3cr:t/+ %é")
    w = await world(issuer)

    tokens, _ = await w.sign_in()

    assert tokens.id_token is not None
    [sent] = w.issuer.token_requests
    assert sent["authorization"].startswith("Basic ")
    assert "client_id" not in sent


async def test_a_wrong_client_secret_is_invalid_client(world: MakeWorld) -> None:
    """A secret the provider refuses gives FlowError `invalid_client`, the secret not in it."""
    w = await world(FakeIssuer(keys=[KEY], client_secret="right"), client_secret=Secret("wrong"))

    error = await flow_failure(w.sign_in())

    assert error.error is FlowFailure.INVALID_CLIENT
    assert "wrong" not in str(error)


@pytest.mark.parametrize("mistake", ["verifier", "redirect_uri", "code"])
async def test_a_mismatched_exchange_is_invalid_grant(world: MakeWorld, mistake: str) -> None:
    """A wrong PKCE verifier, another redirect_uri or an unknown code is invalid_grant."""
    w = await world()
    request = w.flow.authorization_request(redirect_uri=REDIRECT_URI)
    code = w.issuer.authorize(request.url)
    arguments = {"code": code, "code_verifier": request.code_verifier, "redirect_uri": REDIRECT_URI}
    arguments[{"verifier": "code_verifier"}.get(mistake, mistake)] += "x"

    error = await flow_failure(w.flow.exchange(**arguments))

    assert error.error is FlowFailure.INVALID_GRANT
    assert "details-the-provider-wrote" not in str(error)


async def test_a_code_is_exchanged_only_once(world: MakeWorld) -> None:
    """Replaying a code that was already exchanged is invalid_grant."""
    w = await world()
    request = w.flow.authorization_request(redirect_uri=REDIRECT_URI)
    code = w.issuer.authorize(request.url)
    await w.flow.exchange(code, code_verifier=request.code_verifier, redirect_uri=REDIRECT_URI)

    error = await flow_failure(
        w.flow.exchange(code, code_verifier=request.code_verifier, redirect_uri=REDIRECT_URI)
    )

    assert error.error is FlowFailure.INVALID_GRANT


@pytest.mark.parametrize(
    "body",
    [
        b"<html>sign in</html>",
        b'["access_token"]',
        b'{"access_token": "a", "token_type": "Bearer"}',
        b'{"access_token": 5, "id_token": "x"}',
        b'{"access_token": "a", "id_token": "x", "expires_in": "soon"}',
        b'{"access_token": "a", "id_token": "x", "expires_in": -1}',
        b'{"access_token": "a", "id_token": "x", "expires_in": 1e400}',
        b'{"error": "access_denied"}',
    ],
    ids=[
        "html",
        "array",
        "no-id-token",
        "token-not-string",
        "expires-in-word",
        "expires-in-negative",
        "expires-in-float",
        "error-at-200",
    ],
)
async def test_a_garbage_token_response_is_invalid_response(world: MakeWorld, body: bytes) -> None:
    """A 200 that is not a token response with an ID token is refused, its body not quoted."""
    w = await world()
    w.issuer.token_body = body

    error = await flow_failure(w.sign_in())

    assert error.error is FlowFailure.INVALID_RESPONSE
    assert body.decode() not in str(error)


@pytest.mark.parametrize("stream", [False, True], ids=["content-length", "chunked"])
async def test_an_oversized_token_response_is_refused(world: MakeWorld, stream: bool) -> None:
    """A response over MAX_RESPONSE_BYTES is refused, whether or not it announces its length."""
    w = await world()
    w.issuer.token_body = b'{"access_token": "' + b"a" * MAX_RESPONSE_BYTES + b'"}'
    w.issuer.stream_token_body = stream

    error = await flow_failure(w.sign_in())

    assert error.error is FlowFailure.INVALID_RESPONSE


@pytest.mark.parametrize(
    "body", [b'{"error": "<script>"}', b'{"error": ["invalid_grant"]}', b"Bad Request"]
)
async def test_a_refusal_without_a_known_error_code_is_invalid_response(
    world: MakeWorld, body: bytes
) -> None:
    """A 400 whose `error` is not an RFC 6749 5.2 code never becomes a FlowError code."""
    w = await world()
    w.issuer.token_body, w.issuer.token_status = body, 400

    error = await flow_failure(w.sign_in())

    assert error.error is FlowFailure.INVALID_RESPONSE
    assert "HTTP 400" in str(error)


async def test_a_slow_token_endpoint_times_out(world: MakeWorld) -> None:
    """No answer within http_timeout_seconds is provider_unavailable."""
    w = await world(http_timeout_seconds=0.2)
    w.issuer.token_hang = asyncio.Event()
    try:
        error = await flow_failure(w.sign_in())
    finally:
        w.issuer.token_hang.set()

    assert error.error is FlowFailure.PROVIDER_UNAVAILABLE
    assert "0.2s" in str(error)


async def test_a_down_token_endpoint_is_provider_unavailable(world: MakeWorld) -> None:
    """A 5xx from the token endpoint is provider_unavailable, its body not quoted."""
    w = await world()
    w.issuer.down = True

    error = await flow_failure(w.sign_in())

    assert error.error is FlowFailure.PROVIDER_UNAVAILABLE
    assert "provider-down-body" not in str(error)


@pytest.mark.parametrize(("expires_in", "lifetime"), [(3600, 3600.0), ("60", 60.0), (None, None)])
async def test_expires_in_becomes_an_expiry_time(
    world: MakeWorld, expires_in: Any, lifetime: float | None
) -> None:
    """`expires_in` seconds (also as digits in a string) become expires_at; absent stays None."""
    w = await world(FakeIssuer(keys=[KEY], expires_in=expires_in))

    tokens, _ = await w.sign_in()

    assert tokens.expires_at == (None if lifetime is None else w.clock.now + lifetime)


# --- refresh -------------------------------------------------------------------------------------


async def test_a_refresh_keeps_the_refresh_token_when_none_is_issued(world: MakeWorld) -> None:
    """Refreshed tokens come back; without a new refresh token, the presented one is kept."""
    w = await world()
    tokens, _ = await w.sign_in()
    assert tokens.refresh_token is not None
    w.clock.advance(100)

    refreshed = await w.flow.refresh(tokens.refresh_token)

    assert refreshed.access_token not in (None, tokens.access_token)
    assert refreshed.refresh_token == tokens.refresh_token
    assert refreshed.id_token is None
    assert refreshed.expires_at == w.clock.now + 300
    assert w.issuer.token_requests[-1]["grant_type"] == "refresh_token"


async def test_a_rotated_refresh_token_replaces_the_old_one(world: MakeWorld) -> None:
    """A new refresh token from the provider is returned, and the old one no longer works."""
    w = await world(FakeIssuer(keys=[KEY], rotate_refresh_tokens=True))
    tokens, _ = await w.sign_in()
    assert tokens.refresh_token is not None

    refreshed = await w.flow.refresh(tokens.refresh_token)

    assert refreshed.refresh_token not in (None, tokens.refresh_token)
    error = await flow_failure(w.flow.refresh(tokens.refresh_token))
    assert error.error is FlowFailure.INVALID_GRANT


async def test_a_revoked_refresh_token_is_invalid_grant(world: MakeWorld) -> None:
    """Once the provider revokes the grant, refresh raises FlowError `invalid_grant`."""
    w = await world()
    tokens, _ = await w.sign_in()
    assert tokens.refresh_token is not None
    w.issuer.refresh_revoked = True

    error = await flow_failure(w.flow.refresh(tokens.refresh_token))

    assert error.error is FlowFailure.INVALID_GRANT
    assert tokens.refresh_token not in str(error)


# --- userinfo ------------------------------------------------------------------------------------


async def test_userinfo_returns_the_claims_for_the_access_token(world: MakeWorld) -> None:
    """The userinfo endpoint's JSON object comes back as claims."""
    w = await world(FakeIssuer(keys=[KEY], userinfo_claims={"email": "alice@example.com"}))
    tokens, _ = await w.sign_in()
    assert tokens.access_token is not None

    claims = await w.flow.userinfo(tokens.access_token)

    assert claims == {"sub": "alice", "email": "alice@example.com"}


async def test_userinfo_with_a_refused_token_is_invalid_token(world: MakeWorld) -> None:
    """An access token the provider does not know gives FlowError `invalid_token`."""
    w = await world()

    error = await flow_failure(w.flow.userinfo("not-a-token-it-issued"))

    assert error.error is FlowFailure.INVALID_TOKEN
    assert "not-a-token-it-issued" not in str(error)


async def test_userinfo_without_a_subject_is_invalid_response(world: MakeWorld) -> None:
    """A userinfo answer without a string `sub` (OIDC Core 5.3.2) is refused."""
    w = await world(FakeIssuer(keys=[KEY], subject=""))
    tokens, _ = await w.sign_in()
    assert tokens.access_token is not None

    error = await flow_failure(w.flow.userinfo(tokens.access_token))

    assert error.error is FlowFailure.INVALID_RESPONSE


# --- RP-initiated logout -------------------------------------------------------------------------


async def test_end_session_url_carries_hint_client_and_return_address(world: MakeWorld) -> None:
    """With an end_session_endpoint, the URL names the ID token, the client and where to return."""
    w = await world()
    flow = w.flow_with(end_session_endpoint=w.issuer.url + "/logout")

    url = flow.end_session_url(
        id_token_hint="id.token.value", post_logout_redirect_uri="https://idgate.test/"
    )

    assert url is not None
    assert url.startswith(w.issuer.url + "/logout?")
    assert query_of(url) == {
        "id_token_hint": "id.token.value",
        "client_id": "idgate",
        "post_logout_redirect_uri": "https://idgate.test/",
    }
    without_hint = flow.end_session_url(
        id_token_hint=None, post_logout_redirect_uri="https://idgate.test/"
    )
    assert without_hint is not None
    assert "id_token_hint" not in query_of(without_hint)


async def test_no_end_session_endpoint_means_no_logout_url(world: MakeWorld) -> None:
    """A provider without RP-Initiated Logout gives None."""
    w = await world()

    assert w.flow.end_session_url(id_token_hint="x", post_logout_redirect_uri="https://a/") is None


# --- token revocation (RFC 7009) -----------------------------------------------------------------


async def test_a_revoked_refresh_token_no_longer_refreshes(world: MakeWorld) -> None:
    """Revoking the refresh token sends it with its type hint, and the provider then refuses it."""
    w = await world()
    tokens, _ = await w.sign_in()
    assert tokens.refresh_token is not None

    await w.flow.revoke(tokens.refresh_token, kind=TokenKind.REFRESH_TOKEN)

    [sent] = w.issuer.revocation_requests
    assert sent == {
        "token": tokens.refresh_token,
        "token_type_hint": "refresh_token",
        "client_id": "idgate",
        "authorization": "",
    }
    assert (await flow_failure(w.flow.refresh(tokens.refresh_token))).error is (
        FlowFailure.INVALID_GRANT
    )


async def test_a_confidential_client_revokes_with_basic_authentication(world: MakeWorld) -> None:
    """The revocation request authenticates as the token request does (RFC 7009 2.1):
    client_secret_basic, and no client_id in the form."""
    issuer = FakeIssuer(keys=[KEY], client_id="idgate:web app", client_secret="s3cr:t/+ %é")
    w = await world(issuer)
    tokens, _ = await w.sign_in()
    assert tokens.access_token is not None

    await w.flow.revoke(tokens.access_token, kind=TokenKind.ACCESS_TOKEN)

    [sent] = w.issuer.revocation_requests
    assert sent["authorization"] == w.issuer.token_requests[0]["authorization"]
    assert sent["token_type_hint"] == "access_token"
    assert "client_id" not in sent


async def test_revocation_without_an_endpoint_is_unsupported(world: MakeWorld) -> None:
    """A provider whose metadata has no revocation_endpoint gives FlowError `unsupported`."""
    w = await world(FakeIssuer(keys=[KEY], offer_revocation=False))
    assert w.metadata.revocation_endpoint is None

    error = await flow_failure(w.flow.revoke("a-token", kind=TokenKind.REFRESH_TOKEN))

    assert error.error is FlowFailure.UNSUPPORTED
    assert w.issuer.revocation_requests == []


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b'{"error": "unsupported_token_type"}', FlowFailure.UNSUPPORTED_TOKEN_TYPE),
        (401, b'{"error": "invalid_client"}', FlowFailure.INVALID_CLIENT),
        (
            400,
            b'{"error": "made_up", "error_description": "a-token"}',
            FlowFailure.INVALID_RESPONSE,
        ),
        (404, b"<html>not here</html>", FlowFailure.INVALID_RESPONSE),
        (503, b'{"error": "temporarily_unavailable"}', FlowFailure.PROVIDER_UNAVAILABLE),
    ],
)
async def test_a_refused_revocation_keeps_only_the_error_code(
    world: MakeWorld, status: int, body: bytes, expected: FlowFailure
) -> None:
    """An error answer becomes a FlowError with its RFC 7009 2.2.1 code (or invalid_response, or
    provider_unavailable for a 5xx); neither the token nor the provider's text is in it."""
    w = await world()
    w.issuer.revocation_status, w.issuer.revocation_body = status, body

    error = await flow_failure(w.flow.revoke("a-token", kind=TokenKind.REFRESH_TOKEN))

    assert error.error is expected
    assert "a-token" not in str(error)


async def test_a_slow_revocation_endpoint_times_out(world: MakeWorld) -> None:
    """No answer within http_timeout_seconds is provider_unavailable."""
    w = await world(http_timeout_seconds=0.2)
    w.issuer.revocation_hang = asyncio.Event()
    try:
        error = await flow_failure(w.flow.revoke("a-token", kind=TokenKind.REFRESH_TOKEN))
    finally:
        w.issuer.revocation_hang.set()

    assert error.error is FlowFailure.PROVIDER_UNAVAILABLE
