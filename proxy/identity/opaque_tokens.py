"""Opaque access tokens: one issuer's RFC 7662 introspection answers, checked and cached.

An active answer must be about an access token issued by this issuer for one of its audiences;
it is cached by (issuer, token hash) for at most `introspection.cache_seconds` and never beyond
the token's `exp`, so a token revoked at the provider opens routes for at most that long.
Inactive answers are not cached: a token cannot become active again, but caching every refused
token would let a client flood the cache with random ones and push out the valid entries (the
`failed_auth_per_minute` limit bounds how often one client can repeat). Requests with the same
new token share one introspection call.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from proxy.config.model import IntrospectionSettings
from proxy.errors import InvalidToken
from proxy.identity.claims import claim_strings
from proxy.identity.principal import Principal
from proxy.identity.principal_cache import PrincipalCache
from proxy.reasons import TokenFailure

#: RFC 7662 2.2 `token_type` "as defined in Section 5.1 of OAuth 2.0": what an access token may
#: say (lower case); a refresh token or any other kind is refused, as is a DPoP-bound token,
#: whose proof idgate does not check.
_ACCESS_TOKEN_TYPES: Final = frozenset(
    {"bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token"}
)

CacheKey = tuple[str, bytes]
PrincipalFor = Callable[[Mapping[str, Any], float], Principal | None]
"""The issuer's claim mapping: the Principal these claims name, expiring at the given time, or
None when the user claim is absent."""


class Introspector(Protocol):
    async def introspect(self, token: str) -> Mapping[str, Any]:
        """The endpoint's answer, `active` a boolean; raises ProviderUnavailable without one."""
        ...


class OpaqueTokenVerifier:
    """One issuer's opaque tokens to Principals, through its introspection endpoint."""

    def __init__(
        self,
        *,
        name: str,
        issuer: str,
        audiences: tuple[str, ...],
        settings: IntrospectionSettings,
        introspector: Introspector,
        principal_for: PrincipalFor,
        leeway_seconds: int,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._issuer = issuer
        self._audiences = frozenset(audiences)
        self._settings = settings
        self._introspector = introspector
        self._principal_for = principal_for
        self._leeway = leeway_seconds
        self._clock = clock
        self._cache = PrincipalCache(cache_size, clock)
        self._asking: dict[CacheKey, asyncio.Task[Principal]] = {}

    async def verify(self, token: str) -> Principal:
        """The identity an active token names; raises InvalidToken or ProviderUnavailable."""
        key = (self._name, hashlib.sha256(token.encode("ascii")).digest())
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        task = self._asking.get(key)
        if task is None:
            task = asyncio.create_task(self._introspected(token, key))
            task.add_done_callback(lambda done: self._forget(key, done))
            self._asking[key] = task
        # Shielded: a caller giving up (client gone) must not cancel the call others wait on.
        return await asyncio.shield(task)

    def _forget(self, key: CacheKey, task: asyncio.Task[Principal]) -> None:
        if self._asking.get(key) is task:
            del self._asking[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter has gone

    async def _introspected(self, token: str, key: CacheKey) -> Principal:
        # The answer holds from when it was asked for, not from when it arrived.
        asked_at = self._clock()
        answer = await self._introspector.introspect(token)
        cache_until = asked_at + self._settings.cache_seconds
        expires_at = self._checked_expiry(answer, now=self._clock())
        principal = self._principal_for(answer, cache_until if expires_at is None else expires_at)
        if principal is None:
            raise InvalidToken(TokenFailure.MISSING_CLAIM)
        self._cache.put(key, principal, until=cache_until)
        return principal

    def _checked_expiry(self, answer: Mapping[str, Any], *, now: float) -> float | None:
        """The token's `exp` (None when the answer has none), once the answer is known to be
        about an active access token of this issuer for one of its audiences."""
        if answer.get("active") is not True:
            raise InvalidToken(TokenFailure.INACTIVE)
        token_type = answer.get("token_type")
        if token_type is not None and (
            not isinstance(token_type, str) or token_type.lower() not in _ACCESS_TOKEN_TYPES
        ):
            raise InvalidToken(TokenFailure.TOKEN_TYPE)
        # RFC 7662 2.2: `iss` is "String representing the issuer of this token"; an answer about
        # another issuer's token is not this issuer's word.
        if "iss" in answer and answer["iss"] != self._issuer:
            raise InvalidToken(TokenFailure.ISSUER)
        self._check_audience(answer)
        expires_at = _time_claim(answer, "exp")
        if expires_at is not None and expires_at + self._leeway <= now:
            raise InvalidToken(TokenFailure.EXPIRED)
        not_before = _time_claim(answer, "nbf")
        if not_before is not None and not_before - self._leeway > now:
            raise InvalidToken(TokenFailure.NOT_YET_VALID)
        return expires_at

    def _check_audience(self, answer: Mapping[str, Any]) -> None:
        # RFC 7662 2.2: `aud` is "Service-specific string identifier or list of string
        # identifiers representing the intended audience for this token". A token issued for
        # another API must not open this one.
        if "aud" not in answer:
            if self._settings.require_audience:
                raise InvalidToken(TokenFailure.AUDIENCE)
            return
        if not claim_strings(answer["aud"]) & self._audiences:
            raise InvalidToken(TokenFailure.AUDIENCE)


def _time_claim(answer: Mapping[str, Any], name: str) -> float | None:
    """RFC 7662 2.2: `exp`, `nbf` are "Integer timestamp, measured in the number of seconds since
    January 1 1970 UTC"; anything else there is a malformed answer."""
    value = answer.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(TokenFailure.MALFORMED)
    try:
        seconds = float(value)
    except OverflowError:
        raise InvalidToken(TokenFailure.MALFORMED) from None
    if not math.isfinite(seconds):
        raise InvalidToken(TokenFailure.MALFORMED)
    return seconds
