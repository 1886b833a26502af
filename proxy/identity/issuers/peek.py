"""A token's `iss`, read before anything is verified, only to choose which issuer verifies it.

Nothing read here is believed: the chosen issuer verifies the token with its own keys and checks
`iss` again, so a token naming another issuer's `iss` is only ever checked with that issuer's
keys, which did not sign it.
"""

from __future__ import annotations

from proxy.errors import InvalidToken
from proxy.oidc.provider_jwt import unverified_claims
from proxy.reasons import TokenFailure


def is_jwt(token: str) -> bool:
    """Whether the token has a JWS's shape (RFC 7515 7.1: three segments joined by two dots);
    anything else is an opaque token, which only an issuer that introspects could vouch for."""
    return token.count(".") == 2


def unverified_issuer(token: str) -> str:
    """The `iss` a JWT names, unverified; InvalidToken when it is malformed or names none."""
    issuer = unverified_claims(token).get("iss")
    if issuer is None:
        raise InvalidToken(TokenFailure.MISSING_CLAIM)
    # RFC 7519 4.1.1: "The "iss" value is a case-sensitive string".
    if not isinstance(issuer, str):
        raise InvalidToken(TokenFailure.MALFORMED)
    return issuer
