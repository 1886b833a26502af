"""A token's `iss`, read before anything is verified, only to choose which issuer verifies it.

Nothing read here is believed: the chosen issuer verifies the token with its own keys and checks
`iss` again, so a token naming another issuer's `iss` is only ever checked with that issuer's
keys, which did not sign it.
"""

from __future__ import annotations

from proxy.config.values import InvalidValueError, trust_domain_of
from proxy.errors import InvalidToken
from proxy.oidc.provider_jwt import ParsedToken
from proxy.reasons import TokenFailure


def is_jwt(token: str) -> bool:
    """Whether the token has a JWS's shape (RFC 7515 7.1: three segments joined by two dots);
    anything else is an opaque token, which only an issuer that introspects could vouch for."""
    return token.count(".") == 2


def unverified_issuer(token: ParsedToken) -> str | None:
    """The `iss` a parsed JWT names, unverified, or None when it names none; InvalidToken when
    it is not a string."""
    issuer = token.claims.get("iss")
    # RFC 7519 4.1.1: "The "iss" value is a case-sensitive string".
    if not isinstance(issuer, str | None):
        raise InvalidToken(TokenFailure.MALFORMED)
    return issuer


def unverified_trust_domain(token: ParsedToken) -> str | None:
    """The trust domain of the SPIFFE ID a JWT's `sub` names, unverified; None when `sub` is no
    SPIFFE ID. A JWT-SVID need not name its issuer (JWT-SVID 3 leaves `iss` out): its `sub`'s
    trust domain says whose bundle verifies it."""
    subject = token.claims.get("sub")
    if not isinstance(subject, str):
        return None
    try:
        return trust_domain_of(subject)
    except InvalidValueError:
        return None
