"""ID tokens: only this client's, from this issuer, for this sign-in's nonce, unexpired, pass."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken
from proxy.oidc.id_token import verify_id_token
from proxy.reasons import TokenFailure
from tests.support.issuer import SigningKey, StaticKeys, forge, forge_hs256

ISSUER = "https://issuer.example"
CLIENT_ID = "idgate"
NONCE = "n-0S6_WzA2Mj"
KEY = SigningKey(kid="k1")
OMIT: Any = object()
OIDC = OIDCSettings(issuer=ISSUER, client_id=CLIENT_ID, leeway_seconds=30)
KEYS = StaticKeys((KEY,))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "alice",
        "nonce": NONCE,
        "iat": now,
        "exp": now + 300,
    }
    merged = base | overrides
    return {name: value for name, value in merged.items() if value is not OMIT}


async def verify(token: str, nonce: str = NONCE) -> dict[str, Any]:
    return await verify_id_token(token, oidc=OIDC, keys=KEYS, nonce=nonce)


async def failure_of(token: str, nonce: str = NONCE) -> InvalidToken:
    with pytest.raises(InvalidToken) as caught:
        await verify(token, nonce)
    return caught.value


async def test_a_valid_id_token_returns_its_claims() -> None:
    """An ID token for this client, issuer and nonce gives back its claims."""
    token_claims = claims(email="alice@example.com")

    assert await verify(KEY.sign(token_claims)) == token_claims


@pytest.mark.parametrize(
    ("overrides", "nonce"),
    [({}, "another-sign-in"), ({"nonce": "another-sign-in"}, NONCE), ({"nonce": 5}, NONCE)],
    ids=["other-request", "other-token", "not-a-string"],
)
async def test_a_nonce_other_than_the_one_sent_is_refused(
    overrides: dict[str, Any], nonce: str
) -> None:
    """The token's nonce must be exactly the one this sign-in sent (OIDC Core 3.1.3.7 (11))."""
    error = await failure_of(KEY.sign(claims(**overrides)), nonce)

    assert error.failure is TokenFailure.NONCE
    assert "nonce" in str(error)
    assert NONCE not in str(error)


async def test_a_token_without_a_nonce_is_refused() -> None:
    """An ID token without a nonce cannot answer a sign-in that sent one."""
    error = await failure_of(KEY.sign(claims(nonce=OMIT)))

    assert error.failure is TokenFailure.MISSING_CLAIM


@pytest.mark.parametrize(
    ("aud", "expected"),
    [
        ("another-client", TokenFailure.AUDIENCE),
        (["another-client"], TokenFailure.AUDIENCE),
        ("idgate-admin", TokenFailure.AUDIENCE),
        ([], TokenFailure.MISSING_CLAIM),
        (OMIT, TokenFailure.MISSING_CLAIM),
    ],
    ids=["other", "other-in-list", "prefix", "empty-list", "missing"],
)
async def test_the_audience_must_name_this_client(aud: Any, expected: TokenFailure) -> None:
    """`aud` must contain client_id exactly; an empty or missing one is a missing claim."""
    assert (await failure_of(KEY.sign(claims(aud=aud)))).failure is expected


async def test_several_audiences_without_azp_are_refused() -> None:
    """A token for this client and others must say who it was issued to (azp)."""
    error = await failure_of(KEY.sign(claims(aud=[CLIENT_ID, "other"])))

    assert error.failure is TokenFailure.MISSING_CLAIM
    assert "azp" in str(error)


async def test_several_audiences_with_this_client_as_azp_pass() -> None:
    """With azp naming this client, a token for several audiences is accepted."""
    token_claims = claims(aud=["other", CLIENT_ID], azp=CLIENT_ID)

    assert (await verify(KEY.sign(token_claims)))["sub"] == "alice"


@pytest.mark.parametrize("aud", [CLIENT_ID, [CLIENT_ID, "other"]], ids=["one", "several"])
async def test_an_azp_naming_another_client_is_refused(aud: Any) -> None:
    """A token issued to another party (azp) is refused even when it lists this client."""
    error = await failure_of(KEY.sign(claims(aud=aud, azp="other")))

    assert error.failure is TokenFailure.AUDIENCE


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"exp": -100}, TokenFailure.EXPIRED),
        ({"exp": OMIT}, TokenFailure.MISSING_CLAIM),
        ({"iat": OMIT}, TokenFailure.MISSING_CLAIM),
        ({"iat": 600}, TokenFailure.NOT_YET_VALID),
        ({"iat": "0"}, TokenFailure.MALFORMED),
    ],
    ids=["expired", "no-exp", "no-iat", "iat-future", "iat-string"],
)
async def test_times_are_required_and_enforced(
    overrides: dict[str, Any], expected: TokenFailure
) -> None:
    """exp and iat must be present numbers; expired or future-issued tokens are refused."""
    now = int(time.time())
    times = {
        name: value if value is OMIT or isinstance(value, str) else now + value
        for name, value in overrides.items()
    }

    assert (await failure_of(KEY.sign(claims(**times)))).failure is expected


@pytest.mark.parametrize(
    "iss", ["https://issuer.example/", "https://issuer.example.evil", "HTTPS://ISSUER.EXAMPLE"]
)
async def test_the_issuer_must_match_exactly(iss: str) -> None:
    """Only the configured issuer string passes."""
    assert (await failure_of(KEY.sign(claims(iss=iss)))).failure is TokenFailure.ISSUER


@pytest.mark.parametrize(
    ("sub", "expected"),
    [
        (OMIT, TokenFailure.MISSING_CLAIM),
        ("", TokenFailure.MISSING_CLAIM),
        (42, TokenFailure.MALFORMED),
    ],
    ids=["missing", "empty", "number"],
)
async def test_a_token_without_a_subject_string_is_refused(
    sub: Any, expected: TokenFailure
) -> None:
    """`sub` is required and must be a non-empty string."""
    assert (await failure_of(KEY.sign(claims(sub=sub)))).failure is expected


@pytest.mark.parametrize("alg", ["none", "None"])
async def test_an_unsigned_id_token_is_refused(alg: str) -> None:
    """`alg: none` never passes, whatever the claims."""
    error = await failure_of(forge({"alg": alg, "kid": "k1"}, claims()))

    assert error.failure is TokenFailure.ALGORITHM


async def test_hmac_keyed_with_the_public_key_is_refused() -> None:
    """An HS256 token whose secret is the provider's public JWK is refused (RFC 8725 2.1)."""
    token = forge_hs256({"alg": "HS256", "kid": "k1"}, claims(), json.dumps(KEY.jwk).encode())

    assert (await failure_of(token)).failure is TokenFailure.ALGORITHM


async def test_a_token_signed_by_another_key_is_refused() -> None:
    """A key outside the provider's set fails: unknown kid, or a bad signature under a known one."""
    stranger = SigningKey(kid="stranger")
    impostor = stranger.sign(claims(), headers={"kid": "k1"})

    assert (await failure_of(stranger.sign(claims()))).failure is TokenFailure.UNKNOWN_KEY
    assert (await failure_of(impostor)).failure is TokenFailure.SIGNATURE


async def test_a_refreshed_token_needs_no_nonce_but_the_same_subject() -> None:
    """After a refresh (no nonce sent) the ID token must still name the session's user."""
    token = KEY.sign(claims(nonce=OMIT))
    verified = await verify_id_token(
        token, oidc=OIDC, keys=KEYS, nonce=None, subject=claims()["sub"]
    )
    assert verified["sub"] == claims()["sub"]
    with pytest.raises(InvalidToken) as raised:
        await verify_id_token(token, oidc=OIDC, keys=KEYS, nonce=None, subject="someone-else")
    assert raised.value.failure is TokenFailure.SUBJECT
