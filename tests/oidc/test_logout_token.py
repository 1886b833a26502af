"""Logout tokens: provider-signed, for this client, fresh, used once, unmistakably for logout."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken
from proxy.oidc.logout_token import BACKCHANNEL_LOGOUT_EVENT, LogoutRequest, LogoutTokenVerifier
from proxy.reasons import TokenFailure
from tests.support.issuer import FakeClock, SigningKey, StaticKeys, forge

ISSUER = "https://issuer.example"
CLIENT_ID = "idgate"
LEEWAY = 30
WINDOW = 120.0
KEY = SigningKey(kid="k1")
OMIT: Any = object()
OIDC = OIDCSettings(issuer=ISSUER, client_id=CLIENT_ID, leeway_seconds=LEEWAY)


def make_verifier(clock: FakeClock | None = None) -> LogoutTokenVerifier:
    return LogoutTokenVerifier(
        OIDC,
        StaticKeys((KEY,)),
        clock=clock or FakeClock(now=time.time()),
        replay_window_seconds=WINDOW,
    )


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "sid": "08a5019c-17e1-4977-8f42-65a12843ea02",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    merged = base | overrides
    return {name: value for name, value in merged.items() if value is not OMIT}


async def failure_of(token: str, verifier: LogoutTokenVerifier | None = None) -> TokenFailure:
    with pytest.raises(InvalidToken) as caught:
        await (verifier or make_verifier()).verify(token)
    return caught.value.failure


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, LogoutRequest(sid="08a5019c-17e1-4977-8f42-65a12843ea02", sub=None)),
        ({"sid": OMIT, "sub": "alice"}, LogoutRequest(sid=None, sub="alice")),
        ({"sid": "s1", "sub": "alice"}, LogoutRequest(sid="s1", sub="alice")),
    ],
    ids=["by-sid", "by-sub", "both"],
)
async def test_a_valid_logout_token_names_whose_sessions_end(
    overrides: dict[str, Any], expected: LogoutRequest
) -> None:
    """A logout token with sid, sub or both becomes a LogoutRequest naming them."""
    assert await make_verifier().verify(KEY.sign(claims(**overrides))) == expected


@pytest.mark.parametrize("typ", ["logout+jwt", "application/logout+jwt", "JWT", None])
async def test_logout_and_plain_jwt_types_are_accepted(typ: str | None) -> None:
    """`typ` may be logout+jwt (with or without application/), JWT, or absent."""
    headers = {} if typ is None else {"typ": typ}

    request = await make_verifier().verify(KEY.sign(claims(), headers=headers))

    assert request.sid is not None


@pytest.mark.parametrize("typ", ["at+jwt", "secevent+jwt", "logout", 7])
async def test_a_token_typed_as_something_else_is_refused(typ: Any) -> None:
    """An explicitly typed token of another kind (an access token, ...) is no logout token."""
    assert await failure_of(KEY.sign(claims(), headers={"typ": typ})) is TokenFailure.MALFORMED


async def test_a_replayed_logout_token_is_refused() -> None:
    """The same jti is accepted once; a second token with a new jti still passes."""
    verifier = make_verifier()
    token = KEY.sign(claims())
    await verifier.verify(token)

    assert await failure_of(token, verifier) is TokenFailure.REPLAYED
    assert (await verifier.verify(KEY.sign(claims()))).sid is not None


async def test_a_replay_after_the_window_is_refused_as_too_old() -> None:
    """Once the jti may be forgotten, the token's iat is past the window: still refused."""
    clock = FakeClock(now=time.time())
    verifier = make_verifier(clock)
    token = KEY.sign(claims())
    await verifier.verify(token)
    clock.advance(WINDOW + 2 * LEEWAY + 1)

    assert await failure_of(token, verifier) is TokenFailure.EXPIRED


async def test_a_refused_token_does_not_use_up_its_jti() -> None:
    """A token refused for its claims leaves its jti free for the genuine token."""
    verifier = make_verifier()
    jti = "shared-jti"
    refused = KEY.sign(claims(jti=jti, nonce="x"))
    assert await failure_of(refused, verifier) is TokenFailure.MALFORMED

    assert (await verifier.verify(KEY.sign(claims(jti=jti)))).sid is not None


async def test_a_token_issued_before_the_window_is_refused() -> None:
    """An iat older than the replay window (plus leeway) is refused."""
    old = int(time.time() - WINDOW - LEEWAY - 5)

    assert await failure_of(KEY.sign(claims(iat=old))) is TokenFailure.EXPIRED


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"events": OMIT}, TokenFailure.MISSING_CLAIM),
        ({"events": {"http://schemas.openid.net/event/other": {}}}, TokenFailure.MALFORMED),
        ({"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}}, TokenFailure.MALFORMED),
        ({"events": [BACKCHANNEL_LOGOUT_EVENT]}, TokenFailure.MALFORMED),
        ({"nonce": "n-0S6_WzA2Mj"}, TokenFailure.MALFORMED),
        ({"jti": OMIT}, TokenFailure.MISSING_CLAIM),
        ({"iat": OMIT}, TokenFailure.MISSING_CLAIM),
        ({"sid": OMIT}, TokenFailure.MISSING_CLAIM),
        ({"sid": ""}, TokenFailure.MISSING_CLAIM),
        ({"sid": ["s1"]}, TokenFailure.MALFORMED),
        ({"aud": "another-client"}, TokenFailure.AUDIENCE),
        ({"iss": "https://issuer.example.evil"}, TokenFailure.ISSUER),
        ({"exp": int(time.time()) - LEEWAY - 5}, TokenFailure.EXPIRED),
    ],
    ids=[
        "no-events",
        "other-event",
        "event-not-object",
        "events-not-object",
        "nonce-present",
        "no-jti",
        "no-iat",
        "neither-sid-nor-sub",
        "empty-sid",
        "sid-not-string",
        "wrong-aud",
        "wrong-iss",
        "expired",
    ],
)
async def test_a_token_breaking_the_logout_token_rules_is_refused(
    overrides: dict[str, Any], expected: TokenFailure
) -> None:
    """Back-Channel Logout 2.6: every rule on the logout token's claims is enforced."""
    assert await failure_of(KEY.sign(claims(**overrides))) is expected


async def test_an_id_token_is_not_a_logout_token() -> None:
    """An ID token of this client (nonce, no events, no jti) cannot log anybody out."""
    now = int(time.time())
    id_token = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "alice", "nonce": "n", "iat": now}

    assert await failure_of(KEY.sign(id_token | {"exp": now + 300})) is TokenFailure.MISSING_CLAIM


async def test_an_unsigned_logout_token_is_refused() -> None:
    """`alg: none` cannot end anybody's session."""
    assert await failure_of(forge({"alg": "none", "kid": "k1"}, claims())) is TokenFailure.ALGORITHM
