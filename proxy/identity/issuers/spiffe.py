"""SPIFFE JWT-SVIDs: a token whose `sub` is a SPIFFE ID of the issuer's trust domain.

SPIFFE JWT-SVID 3: "The sub claim MUST be set to the SPIFFE ID of the workload to which it is
issued", and "The aud claim MUST be present" (the shared JWT check requires it, and the issuer's
`audiences` always name at least one). The SPIFFE ID becomes both the user and `spiffe_id`, so a
`spiffe_ids` condition matches a JWT-SVID exactly as it matches an X.509-SVID's URI SAN.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from proxy.config.model import IssuerSettings
from proxy.config.values import InvalidValueError, trust_domain_of
from proxy.errors import InvalidToken
from proxy.identity.principal import CredentialSource, Principal
from proxy.reasons import TokenFailure


def svid_principal(
    claims: Mapping[str, Any], settings: IssuerSettings, expires_at: float
) -> Principal:
    """The workload a verified JWT-SVID names; raises InvalidToken when `sub` is not a SPIFFE
    ID of the issuer's trust domain."""
    assert settings.spiffe is not None  # the config loader gives kind spiffe its block
    subject = claims.get("sub")
    if not isinstance(subject, str):
        raise InvalidToken(TokenFailure.MISSING_CLAIM)
    try:
        domain = trust_domain_of(subject)
    except InvalidValueError:
        raise InvalidToken(TokenFailure.MALFORMED) from None
    # SPIFFE Trust Domain and Bundle 4: a bundle's keys vouch for identities of its own trust
    # domain only, so a key of this issuer never makes another domain's SPIFFE ID.
    if domain != settings.spiffe.trust_domain:
        raise InvalidToken(TokenFailure.WRONG_TRUST_DOMAIN)
    return Principal(
        user=subject,
        email=None,
        groups=frozenset(),
        claims=MappingProxyType(dict(claims)),
        source=CredentialSource.BEARER,
        expires_at=expires_at,
        spiffe_id=subject,
        issuer=settings.name,
    )
