"""Bearer access tokens (RFC 6750): the header parsed, the token verified by its issuer.

The issuer is chosen by the token's `iss` (`proxy/identity/issuers/registry.py`) and verifies it
with its own keys (`proxy/identity/issuers/issuer.py`); a route that names its `issuers` refuses
any other issuer's token before a key is looked up. A verified token is cached by its hash until
its `exp` (the token's bytes settle its issuer, so a hit needs no parsing); failures are not
cached. A token of a user an operator revoked (`idgate revoke --user`) issued (`iat`) up to the
revocation is refused, cached or not.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Set
from typing import Any, Final, Protocol

from proxy.errors import InvalidToken
from proxy.identity.issuers import IssuerRegistry
from proxy.identity.issuers.peek import is_jwt
from proxy.identity.principal import Principal
from proxy.identity.principal_cache import PrincipalCache
from proxy.observability.metrics import Metrics
from proxy.oidc.provider_jwt import MAX_TOKEN_CHARS, KeySource, parse_token
from proxy.reasons import TokenFailure

__all__ = ["MAX_TOKEN_CHARS", "BearerVerifier", "KeySource", "bearer_token", "check_accepted"]

# RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


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


class RevokedUsers(Protocol):
    """The revocation list (proxy/sessions/revocation_list.py), seen from here."""

    def covers_token(self, *, user: str, issued_at: float | None) -> bool: ...


class BearerVerifier:
    """Bearer tokens of every configured issuer to Principals, with a cache of the valid ones."""

    def __init__(
        self,
        issuers: IssuerRegistry,
        metrics: Metrics,
        *,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        revocations: RevokedUsers | None = None,
    ) -> None:
        """`clock` (Unix time) decides when a cached token has expired. A cached identity costs
        about 1 KB (`python -m bench.memory`): the default cache holds ~10 MB per worker and keeps
        a full garbage collection over it short (the benchmark measured 100 ms pauses over a
        30,000-entry cache)."""
        self._issuers = issuers
        self._metrics = metrics
        self._cache = PrincipalCache(cache_size, clock)
        self._revocations = revocations

    async def verify(self, token: str, *, accepted: Set[str] | None = None) -> Principal:
        """The identity a valid token names; raises InvalidToken or ProviderUnavailable.
        `accepted`: the names of the issuers whose tokens count here (a route's `issuers`);
        None for all."""
        started = time.perf_counter()
        issuer = ""
        try:
            principal = await self._cached_or_verified(token, accepted)
            issuer = principal.issuer or ""
            await self._issuers.confirm(token, principal)
            return self.unrevoked(principal)
        except InvalidToken as error:
            self._count("invalid", error.failure.value, error.issuer or issuer)
            raise
        finally:
            self._metrics.token_validation_duration.observe(time.perf_counter() - started)

    def unrevoked(self, principal: Principal) -> Principal:
        """The token's identity, unless an operator revoked its user since the token was issued:
        then raises InvalidToken(REVOKED). Also what an open tunnel's re-check asks."""
        if self._revocations is not None and self._revocations.covers_token(
            user=principal.user, issued_at=_issued_at(principal.claims)
        ):
            raise InvalidToken(TokenFailure.REVOKED)
        return principal

    async def _cached_or_verified(self, token: str, accepted: Set[str] | None) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(TokenFailure.TOO_LARGE)
        if not token.isascii():
            raise InvalidToken(TokenFailure.MALFORMED)
        cache_key = hashlib.sha256(token.encode("ascii")).digest()
        # SPEC: "The cache never outlives the token": a principal expires with its token's `exp`.
        cached = self._cache.get(cache_key)
        if cached is not None:
            check_accepted(cached.issuer, accepted)
            self._count("cached", "ok", cached.issuer or "")
            return cached
        parsed = parse_token(token) if is_jwt(token) else None
        issuer = self._issuers.select_opaque() if parsed is None else self._issuers.select(parsed)
        try:
            check_accepted(issuer.name, accepted)
            if parsed is None:
                principal = await issuer.verify_opaque(token)
            else:
                principal = await issuer.verify_jwt(parsed)
        except InvalidToken as error:
            error.issuer = issuer.name
            raise
        if parsed is not None:
            # An opaque token's answer is cached by its issuer, no longer than it may be reused.
            principal = self._cache.put(cache_key, principal)
        self._count("valid", "ok", issuer.name)
        return principal

    def _count(self, result: str, reason: str, issuer: str) -> None:
        self._metrics.child(self._metrics.token_validations, result, reason, issuer).inc()


def check_accepted(issuer: str | None, accepted: Set[str] | None) -> None:
    """Raise InvalidToken(ISSUER_NOT_ACCEPTED) for an identity of an issuer not in `accepted`
    (a route's `issuers`; None accepts all). An identity of no issuer (a client certificate) is
    not limited by it."""
    if accepted is not None and issuer is not None and issuer not in accepted:
        raise InvalidToken(TokenFailure.ISSUER_NOT_ACCEPTED, issuer=issuer)


def _issued_at(claims: Mapping[str, Any]) -> float | None:
    """RFC 7519 4.1.6: "The "iat" (issued at) claim identifies the time at which the JWT was
    issued." None when absent or not a number (such a token of a revoked user is refused)."""
    value = claims.get("iat")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None
