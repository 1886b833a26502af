from typing import Any

import jwt
import pytest

from bench.tokens import GROUP, Issuer

AUDIENCE = "https://api.bench.test"


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer(issuer="http://127.0.0.1:1", audience=AUDIENCE)


def verify(issuer: Issuer, token: str) -> dict[str, Any]:
    (key,) = jwt.PyJWKSet.from_dict(issuer.jwks()).keys
    return jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=issuer.issuer)


def test_tokens_verify_against_the_published_jwks(issuer: Issuer) -> None:
    """A minted token verifies with the JWKS the upstream publishes, and names the group."""
    claims = verify(issuer, issuer.token("alice"))
    assert claims["sub"] == "alice"
    assert claims["groups"] == [GROUP]
    assert jwt.get_unverified_header(issuer.token())["kid"] == issuer.kid


def test_overrides_change_or_remove_claims(issuer: Issuer) -> None:
    """An override replaces a claim, and None leaves it out."""
    claims = issuer.claims("bob", groups=["contractors"], iat=None)
    assert claims["groups"] == ["contractors"]
    assert "iat" not in claims


def test_unsigned_token_says_alg_none(issuer: Issuer) -> None:
    """The `alg: none` token carries valid claims and no signature."""
    token = issuer.unsigned()
    assert jwt.get_unverified_header(token)["alg"] == "none"
    assert token.endswith(".")


def test_many_tokens_are_distinct_and_valid(issuer: Issuer) -> None:
    """Tokens minted across processes are all different and all verify."""
    tokens = issuer.mint_many(20, prefix="load", processes=2)
    assert len(set(tokens)) == 20
    subjects = {verify(issuer, token)["sub"] for token in tokens}
    assert subjects == {f"load-{n}" for n in range(20)}
