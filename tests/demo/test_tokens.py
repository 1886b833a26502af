"""The dev issuer's tokens: its one key, what its endpoints accept, and what they refuse.

Whether other implementations accept the tokens is tests/demo/test_issuer.py's (PyJWT, through
`/jwks`); these check the issuer's own checks of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import jwt
import pytest
from joserfc.errors import JoseError

from proxy.demo.directory import USERS
from proxy.demo.tokens import TokenMint

ISSUER = "http://issuer.test"
ALICE = USERS[0]


def access_token(mint: TokenMint, *, lifetime: int = 600) -> str:
    return mint.access_token(
        subject="alice",
        client_id="web",
        audiences=("demo-api", "web"),
        scope="openid",
        lifetime=lifetime,
        claims={"groups": ["engineering"]},
    )


def id_token(mint: TokenMint, *, lifetime: int = 600) -> str:
    return mint.id_token(user=ALICE, client_id="web", nonce="n", sid="the-sid", lifetime=lifetime)


def test_jwks_names_its_key_by_rfc7638_thumbprint() -> None:
    """One public ES256 key, its kid the RFC 7638 thumbprint written out here, no private part."""
    mint = TokenMint(issuer=ISSUER)
    (key,) = mint.jwks()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in key
    members = {name: key[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert key["kid"] == thumbprint.decode("ascii")
    assert jwt.get_unverified_header(access_token(mint))["kid"] == key["kid"]


def test_live_access_token_is_accepted() -> None:
    mint = TokenMint(issuer=ISSUER)
    claims = mint.verify_access_token(access_token(mint))
    assert (claims["sub"], claims["iss"], claims["scope"]) == ("alice", ISSUER, "openid")


def test_expired_id_token_is_still_a_logout_hint() -> None:
    """RP-Initiated Logout: the hint is accepted after its `exp`; an access token never is."""
    mint = TokenMint(issuer=ISSUER)
    assert mint.verify_id_token_hint(id_token(mint, lifetime=-60))["sid"] == "the-sid"
    with pytest.raises(JoseError):
        mint.verify_access_token(access_token(mint, lifetime=-60))


def test_id_token_is_not_an_access_token() -> None:
    """`typ` tells them apart (RFC 9068 2.1): userinfo refuses an ID token."""
    mint = TokenMint(issuer=ISSUER)
    with pytest.raises(JoseError):
        mint.verify_access_token(id_token(mint))


def unsigned(token: str) -> str:
    """The token re-headed `alg: none`, its signature dropped."""
    header, payload, _ = token.split(".")
    claimed = json.loads(base64.urlsafe_b64decode(header + "=="))
    none = base64.urlsafe_b64encode(json.dumps({**claimed, "alg": "none"}).encode()).rstrip(b"=")
    return f"{none.decode()}.{payload}."


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda mint: access_token(TokenMint(issuer=ISSUER)), id="another key"),
        pytest.param(lambda mint: unsigned(access_token(mint)), id="alg none"),
        pytest.param(lambda mint: access_token(mint)[:-4] + "AAAA", id="bad signature"),
        pytest.param(lambda mint: "not.a.token", id="garbage"),
    ],
)
def test_tokens_not_signed_by_this_key_are_refused(forge: Any) -> None:
    """Neither the access token check nor the logout hint check accepts them."""
    mint = TokenMint(issuer=ISSUER)
    token = forge(mint)
    with pytest.raises(JoseError):
        mint.verify_access_token(token)
    with pytest.raises(JoseError):
        mint.verify_id_token_hint(token)
