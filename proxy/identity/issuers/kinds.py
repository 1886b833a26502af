"""What each kind of issuer adds to the checks every token gets: one entry per `IssuerKind`.

A kind's `check` sees the verified claims after the shared checks (signature, `iss`, `aud`, times)
and raises InvalidToken for a token its kind refuses; its `principal` turns the claims into the
identity. A new kind adds a module with these two and one line in KIND_RULES.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from proxy.config.model import IssuerKind, IssuerSettings
from proxy.identity.claims import principal_from_claims
from proxy.identity.issuers.kubernetes import kubernetes_principal
from proxy.identity.issuers.spiffe import svid_principal
from proxy.identity.principal import CredentialSource, Principal

KindCheck = Callable[[Mapping[str, Any], IssuerSettings], None]
"""Raises InvalidToken for verified claims this kind refuses."""
PrincipalMapping = Callable[[Mapping[str, Any], IssuerSettings, float], Principal | None]
"""(verified claims, issuer, expires_at) to the identity; None when the claims name no user."""


def mapped_principal(
    claims: Mapping[str, Any], settings: IssuerSettings, expires_at: float
) -> Principal | None:
    """The identity the issuer's `claims` mapping reads from a bearer token."""
    return principal_from_claims(
        claims,
        settings.claims,
        issuer=settings.name,
        source=CredentialSource.BEARER,
        expires_at=expires_at,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class KindRules:
    check: KindCheck | None = None
    principal: PrincipalMapping = mapped_principal


KIND_RULES: Final[Mapping[IssuerKind, KindRules]] = {
    IssuerKind.OIDC: KindRules(),
    IssuerKind.KUBERNETES: KindRules(principal=kubernetes_principal),
    IssuerKind.SPIFFE: KindRules(principal=svid_principal),
}
