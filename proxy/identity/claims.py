"""Reading claims by dotted path, and mapping verified claims to a Principal.

Shared by every identifier (bearer tokens, the ID tokens a session starts from, refreshed
sessions) so that the configured claim names mean the same thing whichever way a user arrives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from proxy.config.model import OIDCSettings
from proxy.identity.principal import CredentialSource, Principal, SignIn

_MISSING: Any = object()
_log = logging.getLogger("idgate.identity")


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`realm_access.roles`), or None when any step is missing.

    A key that itself contains dots (`https://example.com/groups`) is found first as a whole.
    """
    value = claims.get(path, _MISSING)
    if value is not _MISSING:
        return value
    node: Any = claims
    for step in path.split("."):
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


def groups_withheld(claims: Mapping[str, Any], groups_claim: str) -> bool:
    """Whether the provider left the groups out and said so: OIDC Core 5.6.2 distributed claims
    name it in `_claim_names` (Entra ID does beyond 200 groups in a JWT), and Entra ID's
    `hasgroups: true` means the same."""
    if claim_at(claims, groups_claim) is not None:
        return False
    names = claims.get("_claim_names")
    return (isinstance(names, Mapping) and groups_claim in names) or claims.get("hasgroups") is True


#: RFC 9068 2.2.3 / RFC 8693 4.2: "The value of the scope claim is a JSON string containing a
#: space-separated list of scopes". Okta and Azure AD send the same list as `scp`.
SPACE_SEPARATED_CLAIMS: Final = frozenset({"scope", "scp"})


def claim_strings(value: Any, *, space_separated: bool = False) -> frozenset[str]:
    """A claim as a set of strings: a list of strings, one string (split on spaces when the claim
    is a space-separated list), or nothing for anything else."""
    if isinstance(value, str):
        return frozenset(value.split()) if space_separated else frozenset((value,))
    if isinstance(value, list | tuple):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def principal_from_claims(
    claims: Mapping[str, Any], oidc: OIDCSettings, *, source: CredentialSource, expires_at: float
) -> Principal | None:
    """The Principal these verified claims describe, or None when the user claim is absent."""
    user = claim_at(claims, oidc.user_claim)
    if not isinstance(user, str) or not user:
        return None
    if groups_withheld(claims, oidc.groups_claim):
        # Read as "no groups", a `deny: groups:` rule would let the user through: fail closed.
        _log.warning(
            "refused user %s: the token leaves out the %r claim and points elsewhere for it "
            "(group overage: _claim_names or hasgroups); idgate does not fetch it",
            user,
            oidc.groups_claim,
        )
        return None
    email = claim_at(claims, oidc.email_claim)
    return Principal(
        user=user,
        email=email if isinstance(email, str) and email else None,
        groups=claim_strings(claim_at(claims, oidc.groups_claim)),
        claims=MappingProxyType(dict(claims)),
        source=source,
        expires_at=expires_at,
        sign_in=sign_in_from_claims(claims),
    )


def sign_in_from_claims(claims: Mapping[str, Any]) -> SignIn:
    """`auth_time`, `acr` and `amr` of verified claims (OIDC Core 2); a claim of the wrong type
    counts as absent, which fails closed: it meets no `step_up` requirement."""
    auth_time = claims.get("auth_time")
    acr = claims.get("acr")
    amr = claims.get("amr")
    return SignIn(
        auth_time=float(auth_time)
        if isinstance(auth_time, int | float)
        and not isinstance(auth_time, bool)
        and math.isfinite(auth_time)
        else None,
        acr=acr if isinstance(acr, str) and acr else None,
        # OIDC Core 2: amr is a "JSON array of strings".
        amr=claim_strings(amr) if isinstance(amr, list) else frozenset(),
    )
