"""Every configured issuer, and the choice of one for a token by its `iss`, before any key.

RFC 8725 3.8: "When a JWT contains an "iss" (issuer) claim, the application MUST validate that
the cryptographic keys used for the cryptographic operations in the JWT belong to the issuer." So
the issuer is chosen by the token's exact `iss`, and only that issuer's keys are ever asked for
its `kid`: a `kid` that exists at two issuers never lets one issuer's key verify a token naming
the other. Each issuer keeps its own keys: one that cannot be reached fails its own
tokens only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from proxy.errors import InvalidToken
from proxy.identity.issuers.issuer import Issuer
from proxy.identity.issuers.peek import unverified_issuer, unverified_trust_domain
from proxy.identity.principal import Principal
from proxy.oidc.provider_jwt import ParsedToken
from proxy.reasons import TokenFailure


class IssuerRegistry:
    def __init__(self, issuers: Iterable[Issuer]) -> None:
        """`issuers` in configuration order, the `oidc` block's first; names are unique and no
        two issuers that take bearer tokens share an `iss` (the config loader checked both)."""
        self._issuers: Mapping[str, Issuer] = MappingProxyType(
            {issuer.name: issuer for issuer in issuers}
        )
        # The config allows one issuer with `introspection`: an opaque token names no issuer.
        self._introspecting = next(
            (issuer for issuer in self._issuers.values() if issuer.introspects), None
        )

    @property
    def issuers(self) -> Mapping[str, Issuer]:
        """By name, in configuration order."""
        return self._issuers

    def readiness(self) -> dict[str, bool]:
        """Which issuers have keys loaded, by name."""
        return {name: issuer.ready for name, issuer in self._issuers.items()}

    async def confirm(self, token: str, principal: Principal) -> None:
        """The say of the principal's issuer on this use of its token (a TokenReview)."""
        issuer = self._issuers.get(principal.issuer or "")
        if issuer is not None:
            await issuer.confirm(token, principal)

    def select(self, token: ParsedToken) -> Issuer:
        """The issuer that must verify `token`, from its unverified `iss` (or, for a JWT-SVID
        issuer without one configured, its `sub`'s trust domain); InvalidToken(ISSUER) when no
        issuer has that `iss`. Of two with the same `iss` (the `oidc` block for sessions
        only, and a named issuer for the same provider's access tokens), the one that takes
        bearer tokens; the other refuses every token's audience."""
        iss = unverified_issuer(token)
        named = [issuer for issuer in self._issuers.values() if iss and issuer.iss == iss]
        if not named:
            # A JWT-SVID issuer configured without `issuer` is chosen by its trust domain.
            domain = unverified_trust_domain(token)
            named = [
                issuer
                for issuer in self._issuers.values()
                if domain is not None and issuer.trust_domain == domain
            ]
        if not named:
            raise InvalidToken(TokenFailure.MISSING_CLAIM if iss is None else TokenFailure.ISSUER)
        return next((issuer for issuer in named if issuer.takes_bearer_tokens), named[0])

    def select_opaque(self) -> Issuer:
        """The issuer that must vouch for a token that is no JWT: an opaque token names no
        issuer, so only the one that introspects can; InvalidToken(MALFORMED) without one."""
        if self._introspecting is None:
            raise InvalidToken(TokenFailure.MALFORMED)
        return self._introspecting
