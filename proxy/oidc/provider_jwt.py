"""The one check of a provider-signed JWT, shared by access, ID and logout tokens.

The checks follow RFC 8725 (JWT Best Current Practices): the algorithm must be on our allowlist
whatever the token claims, and never `none` or HMAC; the key comes only from the provider's JWKS,
never from a `jwk`, `jku`, `x5u` or `x5c` header; `iss` is compared exactly and `aud` must name one
of the audiences the caller accepts; `exp`, `nbf` and `iat` are checked with the configured leeway.
Every failure is an InvalidToken carrying its TokenFailure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

import jwt
from jwt.types import Options

from proxy.config.model import ASYMMETRIC_ALGORITHMS, OIDCSettings
from proxy.errors import InvalidToken, TokenFailure

MAX_TOKEN_CHARS: Final = 16 * 1024

_TIME_CLAIMS: Final = ("exp", "nbf", "iat")

#: pyjwt's exceptions, most specific first (InvalidSignatureError is a DecodeError).
_FAILURES: Final[tuple[tuple[type[jwt.PyJWTError], TokenFailure], ...]] = (
    (jwt.InvalidSignatureError, TokenFailure.SIGNATURE),
    (jwt.ExpiredSignatureError, TokenFailure.EXPIRED),
    (jwt.ImmatureSignatureError, TokenFailure.NOT_YET_VALID),
    (jwt.InvalidAudienceError, TokenFailure.AUDIENCE),
    (jwt.MissingRequiredClaimError, TokenFailure.MISSING_CLAIM),
    (jwt.InvalidAlgorithmError, TokenFailure.ALGORITHM),
)


class KeySource(Protocol):
    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The provider key for this kid that verifies `alg`; raises InvalidToken otherwise."""
        ...


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a bounded, ASCII compact JWS, before anything is verified."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(TokenFailure.TOO_LARGE)
    if not token.isascii():
        raise InvalidToken(TokenFailure.MALFORMED)
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise InvalidToken(TokenFailure.MALFORMED) from error


async def decode_provider_jwt(
    token: str,
    *,
    oidc: OIDCSettings,
    keys: KeySource,
    audiences: Sequence[str],
    required: Sequence[str],
) -> dict[str, Any]:
    """The claims of a token the provider signed for one of `audiences`; raises InvalidToken.

    `iss` and `aud` are always required; `required` names the other claims that must be present.
    """
    header = unverified_header(token)
    alg = header.get("alg")
    # RFC 8725 3.1: "Libraries MUST enable the caller to specify a supported set of algorithms
    # and MUST NOT use any other algorithms when performing cryptographic operations." The config
    # already refuses symmetric ones; intersecting again means no caller can enable `none` or HMAC.
    if not isinstance(alg, str) or alg not in frozenset(oidc.algorithms) & ASYMMETRIC_ALGORITHMS:
        raise InvalidToken(TokenFailure.ALGORITHM)
    kid = header.get("kid")
    if not isinstance(kid, str | None):
        raise InvalidToken(TokenFailure.MALFORMED)
    key = await keys.key_for(kid, alg)
    # Time claims are checked by pyjwt against the system clock with the configured leeway; `iss`
    # is compared below, because pyjwt reports a non-string `iss` as a mismatch, not as malformed.
    options: Options = {
        "require": list(dict.fromkeys(("iss", "aud", *required))),
        "verify_iss": False,
    }
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=list(audiences),
            leeway=oidc.leeway_seconds,
            options=options,
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(_failure_of(error)) from error
    _check_issuer(claims["iss"], oidc.issuer)
    _check_times(claims)
    return claims


def _check_issuer(issuer: Any, expected: str) -> None:
    # RFC 7519 4.1.1: "The "iss" value is a case-sensitive string": one string, compared whole
    # (`https://issuer.example.evil` is not `https://issuer.example`).
    if not isinstance(issuer, str):
        raise InvalidToken(TokenFailure.MALFORMED)
    if issuer != expected:
        raise InvalidToken(TokenFailure.ISSUER)


def _check_times(claims: dict[str, Any]) -> None:
    # RFC 7519 4.1.4-4.1.6: each "MUST be a number containing a NumericDate value"; pyjwt also
    # takes numeric strings, which callers reading these claims must never see.
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidToken(TokenFailure.MALFORMED)


def _failure_of(error: jwt.PyJWTError) -> TokenFailure:
    for kind, failure in _FAILURES:
        if isinstance(error, kind):
            return failure
    return TokenFailure.MALFORMED
