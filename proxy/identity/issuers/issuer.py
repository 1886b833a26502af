"""One issuer's tokens to Principals: its keys, its audiences, its kind's checks, its claims.

The checks every provider token gets are `decode_provider_jwt`'s (RFC 8725); here are the ones
an access token adds: `exp` required, no ID token (`proxy/identity/token_kind.py`),
`max_token_lifetime`, then the kind's own check and its claim mapping (`kinds.py`). An issuer with
`introspection` also vouches for opaque tokens (`proxy/identity/opaque_tokens.py`), mapped by
the same claim mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from proxy.config.model import IssuerSettings
from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.identity.issuers.kinds import KIND_RULES
from proxy.identity.opaque_tokens import Introspector, OpaqueTokenVerifier
from proxy.identity.principal import Principal
from proxy.identity.token_kind import access_token_type_check
from proxy.oidc.provider_jwt import ClaimsCheck, KeySource, ParsedToken, decode_provider_jwt
from proxy.reasons import TokenFailure


class IssuerKeys(KeySource, Protocol):
    """An issuer's key source with its life: `ProviderKeys`, or a kind's own fetcher."""

    @property
    def ready(self) -> bool:
        """At least one key is loaded."""
        ...

    @property
    def discovered_issuer(self) -> str | None:
        """The `iss` its discovery document named; None before it was fetched, or without one."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class TokenConfirmation(Protocol):
    """A say on every use of a token its issuer verified, cached or not: a Kubernetes
    TokenReview (`proxy/oidc/token_review.py`)."""

    async def check(self, token: str, *, user: str, expires_at: float) -> None:
        """Raises InvalidToken when the token no longer counts, ProviderUnavailable when
        that cannot be told now."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rules:
    """The `TokenRules` of one verification, with the issuer's `iss` settled."""

    issuer: str | None
    algorithms: tuple[str, ...]
    leeway_seconds: int


class Issuer:
    def __init__(
        self,
        settings: IssuerSettings,
        keys: IssuerKeys,
        *,
        refuse_id_tokens: ClaimsCheck,
        introspector: Introspector | None = None,
        confirmation: TokenConfirmation | None = None,
    ) -> None:
        """`refuse_id_tokens` (proxy/identity/token_kind.py) knows which tokens are ID tokens:
        for the `oidc` issuer, also those for idgate's own client. `introspector` asks the
        issuer's introspection endpoint, when `settings.introspection` configures one.
        `confirmation`, when given, is asked on every use of a token (`confirm`)."""
        self.settings = settings
        self.keys = keys
        self.confirmation = confirmation
        self._rules = KIND_RULES[settings.kind]
        self._check_type = access_token_type_check(required=settings.require_access_token_type)
        self._refuse_id_tokens = refuse_id_tokens
        # A lifetime limit needs `iat`: without it, `exp - iat` cannot be told.
        lifetime_limited = settings.max_token_lifetime_seconds is not None
        self._required = ("exp", "iat") if lifetime_limited else ("exp",)
        introspection = settings.introspection
        self._opaque = (
            None
            if introspection is None or introspector is None
            else OpaqueTokenVerifier(
                name=settings.name,
                issuer=settings.issuer or "",
                audiences=settings.audiences,
                settings=introspection,
                introspector=introspector,
                principal_for=lambda claims, expires_at: self._rules.principal(
                    claims, settings, expires_at
                ),
                leeway_seconds=settings.leeway_seconds,
            )
        )

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def iss(self) -> str | None:
        """The exact `iss` of its tokens: configured, or learnt from its discovery."""
        return self.settings.issuer or self.keys.discovered_issuer

    @property
    def trust_domain(self) -> str | None:
        """For a JWT-SVID issuer without a configured `issuer`, the trust domain by which its
        tokens are chosen and whose bundle verifies them whatever `iss` they name; else None."""
        spiffe = self.settings.spiffe
        return spiffe.trust_domain if spiffe is not None and not self.settings.issuer else None

    @property
    def takes_bearer_tokens(self) -> bool:
        """Whether it accepts bearer tokens at all: the `oidc` block without `audiences` serves
        browser sessions only."""
        return bool(self.settings.audiences)

    @property
    def introspects(self) -> bool:
        """Whether it vouches for opaque tokens through its introspection endpoint."""
        return self._opaque is not None

    @property
    def ready(self) -> bool:
        return self.keys.ready

    async def verify_opaque(self, token: str) -> Principal:
        """The identity of a token that is no JWT, as this issuer's introspection endpoint
        vouches for it; raises InvalidToken (MALFORMED when it does not introspect), or
        ProviderUnavailable when the endpoint cannot be had now."""
        if self._opaque is None:
            raise InvalidToken(TokenFailure.MALFORMED)
        return await self._opaque.verify(token)

    async def verify_jwt(self, token: ParsedToken) -> Principal:
        """The identity of a token this issuer signed; raises InvalidToken, or
        ProviderUnavailable when its keys cannot be had now."""
        iss = self.iss
        if iss is None and self.trust_domain is None:
            raise ProviderUnavailable(f"issuer {self.name}'s discovery is not loaded yet")
        settings = self.settings
        claims = await decode_provider_jwt(
            token,
            oidc=_Rules(
                issuer=iss, algorithms=settings.algorithms, leeway_seconds=settings.leeway_seconds
            ),
            keys=self.keys,
            audiences=settings.audiences,
            required=self._required,
            check_header=self._check_type,
            check_kind=self._refuse_id_tokens,
        )
        self._check_lifetime(claims)
        if self._rules.check is not None:
            self._rules.check(claims, settings)
        principal = self._rules.principal(claims, settings, _expires_at(claims))
        if principal is None:
            raise InvalidToken(TokenFailure.MISSING_CLAIM)
        return principal

    async def confirm(self, token: str, principal: Principal) -> None:
        """This issuer's say on one use of a token it verified, now or from the cache; raises
        InvalidToken or ProviderUnavailable."""
        if self.confirmation is None:
            return
        try:
            await self.confirmation.check(
                token, user=principal.user, expires_at=principal.expires_at
            )
        except InvalidToken as error:
            error.issuer = self.name
            raise

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        longest = self.settings.max_token_lifetime_seconds
        # decode_provider_jwt made `exp` and `iat` numbers, and both present when this is set.
        if longest is not None and claims["exp"] - claims["iat"] > longest:
            raise InvalidToken(TokenFailure.LIFETIME_TOO_LONG)


def _expires_at(claims: Mapping[str, Any]) -> float:
    # decode_provider_jwt made `exp` a number; an integer beyond a float's range is no date.
    try:
        return float(claims["exp"])
    except OverflowError:
        raise InvalidToken(TokenFailure.MALFORMED) from None
