"""Bearer access tokens (RFC 6750): the header parsed, the JWT verified against the provider's keys.

The checks follow RFC 8725 (JWT Best Current Practices): the algorithm must be on our allowlist
whatever the token claims; the key comes only from the provider's JWKS, never from a `jwk`, `jku`,
`x5u` or `x5c` header; `iss` and `aud` are compared exactly. A verified token is cached by issuer
and token hash until its `exp`; failures are not cached.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import jwt
from cachetools import TLRUCache
from jwt.types import Options

from proxy.config.model import ASYMMETRIC_ALGORITHMS, OIDCSettings
from proxy.errors import InvalidToken, TokenFailure
from proxy.identity.claims import principal_from_claims
from proxy.identity.principal import CredentialSource, Principal
from proxy.metrics import Metrics

MAX_TOKEN_CHARS: Final = 16 * 1024

# RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# Time claims are checked by pyjwt against the system clock with the configured leeway; `iss` is
# compared here, because pyjwt reports a non-string `iss` as a mismatch instead of as malformed.
_DECODE_OPTIONS: Final[Options] = {"require": ["exp", "iss"], "verify_iss": False}

#: pyjwt's exceptions, most specific first (InvalidSignatureError is a DecodeError).
_FAILURES: Final[tuple[tuple[type[jwt.PyJWTError], TokenFailure], ...]] = (
    (jwt.InvalidSignatureError, TokenFailure.SIGNATURE),
    (jwt.ExpiredSignatureError, TokenFailure.EXPIRED),
    (jwt.ImmatureSignatureError, TokenFailure.NOT_YET_VALID),
    (jwt.InvalidAudienceError, TokenFailure.AUDIENCE),
    (jwt.MissingRequiredClaimError, TokenFailure.MISSING_CLAIM),
    (jwt.InvalidAlgorithmError, TokenFailure.ALGORITHM),
)


def bearer_token(authorization: str | None) -> str | None:
    """The token of a Bearer `Authorization` header; None when absent or another scheme."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.partition(" ")
    # RFC 7235 2.1: "It uses a case-insensitive token as a means to identify the authentication
    # scheme". RFC 6750 2.1: credentials = "Bearer" 1*SP b64token
    if scheme.lower() != "bearer":
        return None
    token = credentials.lstrip(" ")
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken(TokenFailure.TOO_LARGE)
    if _B64TOKEN.fullmatch(token) is None:
        raise InvalidToken(TokenFailure.MALFORMED)
    return token


class KeySource(Protocol):
    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The provider key for this kid that verifies `alg`; raises InvalidToken otherwise."""
        ...


class BearerVerifier:
    """Provider-signed JWT access tokens to Principals, with a cache of the valid ones."""

    def __init__(
        self,
        oidc: OIDCSettings,
        keys: KeySource,
        metrics: Metrics,
        *,
        cache_size: int = 50_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (Unix time) decides when a cached token has expired."""
        self._oidc = oidc
        self._keys = keys
        self._metrics = metrics
        self._clock = clock
        # The config already refuses symmetric algorithms; refusing them here again means no
        # other path to this class can make it accept `none` or HMAC keyed with a public key.
        self._algorithms = frozenset(oidc.algorithms) & ASYMMETRIC_ALGORITHMS
        self._audiences = list(oidc.accepted_audiences)
        self._cache: TLRUCache[tuple[str, bytes], Principal, float] = TLRUCache(
            cache_size, _until_expiry, clock
        )

    async def verify(self, token: str) -> Principal:
        """The identity a valid token names; raises InvalidToken or ProviderUnavailable."""
        started = time.perf_counter()
        try:
            return await self._cached_or_verified(token)
        except InvalidToken as error:
            self._count("invalid", error.failure.value)
            raise
        finally:
            self._metrics.token_validation_duration.observe(time.perf_counter() - started)

    async def _cached_or_verified(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(TokenFailure.TOO_LARGE)
        if not token.isascii():
            raise InvalidToken(TokenFailure.MALFORMED)
        cache_key = (self._oidc.issuer, hashlib.sha256(token.encode("ascii")).digest())
        cached = self._cache.get(cache_key)
        # SPEC: "The cache never outlives the token."
        if cached is not None and cached.expires_at > self._clock():
            self._count("cached", "ok")
            return cached
        principal = await self._verified(token)
        self._cache[cache_key] = principal
        self._count("valid", "ok")
        return principal

    async def _verified(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken(TokenFailure.MALFORMED) from error
        alg = header.get("alg")
        # RFC 8725 3.1: "Libraries MUST enable the caller to specify a supported set of algorithms
        # and MUST NOT use any other algorithms when performing cryptographic operations."
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidToken(TokenFailure.ALGORITHM)
        key = await self._keys.key_for(header.get("kid"), alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audiences,
                leeway=self._oidc.leeway_seconds,
                options=_DECODE_OPTIONS,
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(_failure_of(error)) from error
        self._check_issuer(claims["iss"])
        principal = principal_from_claims(
            claims, self._oidc, source=CredentialSource.BEARER, expires_at=_expires_at(claims)
        )
        if principal is None:
            raise InvalidToken(TokenFailure.MISSING_CLAIM)
        return principal

    def _check_issuer(self, issuer: Any) -> None:
        # RFC 7519 4.1.1: "The "iss" value is a case-sensitive string": one string, compared whole
        # (`https://issuer.example.evil` is not `https://issuer.example`).
        if not isinstance(issuer, str):
            raise InvalidToken(TokenFailure.MALFORMED)
        if issuer != self._oidc.issuer:
            raise InvalidToken(TokenFailure.ISSUER)

    def _count(self, result: str, reason: str) -> None:
        self._metrics.token_validations.labels(result=result, reason=reason).inc()


def _failure_of(error: jwt.PyJWTError) -> TokenFailure:
    for kind, failure in _FAILURES:
        if isinstance(error, kind):
            return failure
    return TokenFailure.MALFORMED


def _expires_at(claims: Mapping[str, Any]) -> float:
    exp = claims["exp"]
    # RFC 7519 4.1.4: exp "MUST be a number containing a NumericDate value" (pyjwt also takes
    # numeric strings).
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise InvalidToken(TokenFailure.MALFORMED)
    try:
        return float(exp)
    except OverflowError:
        raise InvalidToken(TokenFailure.MALFORMED) from None


def _until_expiry(_key: tuple[str, bytes], principal: Principal, _now: float) -> float:
    return principal.expires_at
