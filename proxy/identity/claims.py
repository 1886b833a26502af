"""Reading claims by dotted path or JSON Pointer, and mapping verified claims to a Principal.

Shared by every identifier (bearer tokens of every issuer, the ID tokens a session starts from,
refreshed sessions) so that the configured claim names mean the same thing whichever way a user
arrives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from proxy.config.model import ClaimMapping
from proxy.identity.principal import CredentialSource, Principal, SignIn

_MISSING: Any = object()


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`realm_access.roles`) or an RFC 6901 JSON Pointer
    (`/https:~1~1example.com~1roles`), or None when any step is missing.

    A key that itself contains dots (`https://example.com/groups`) is found first as a whole.
    """
    if path.startswith("/"):
        return _pointer_at(claims, path)
    value = claims.get(path, _MISSING)
    if value is not _MISSING:
        return value
    node: Any = claims
    for step in path.split("."):
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


def _pointer_at(claims: Mapping[str, Any], pointer: str) -> Any:
    node: Any = claims
    for token in pointer[1:].split("/"):
        # RFC 6901 4: "first transforming any occurrence of the sequence '~1' to '/', and then
        # transforming any occurrence of the sequence '~0' to '~'".
        step = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and step in node:
            node = node[step]
        # RFC 6901 4: an array index is "0" or digits without a leading zero.
        elif isinstance(node, list) and step.isdigit() and (step == "0" or step[0] != "0"):
            index = int(step)
            if index >= len(node):
                return None
            node = node[index]
        else:
            return None
    return node


def first_claim(claims: Mapping[str, Any], paths: Sequence[str]) -> Any:
    """The value of the first of `paths` present (not null) in `claims`; None when none is."""
    for path in paths:
        value = claim_at(claims, path)
        if value is not None:
            return value
    return None


def _first_string(claims: Mapping[str, Any], paths: Sequence[str]) -> str | None:
    """The first of `paths` that holds a non-empty string: `[preferred_username, sub]` falls
    back to `sub` for a token without a username."""
    for path in paths:
        value = claim_at(claims, path)
        if isinstance(value, str) and value:
            return value
    return None


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
    claims: Mapping[str, Any],
    mapping: ClaimMapping,
    *,
    issuer: str,
    source: CredentialSource,
    expires_at: float,
) -> Principal | None:
    """The Principal these verified claims of `issuer` (its name) describe, or None when none of
    the user claims holds a name. Groups are the first groups claim present: a list of strings,
    or one string of space-separated names."""
    user = _first_string(claims, mapping.user)
    if user is None:
        return None
    return Principal(
        user=user,
        email=_first_string(claims, mapping.email),
        groups=claim_strings(first_claim(claims, mapping.groups), space_separated=True),
        claims=MappingProxyType(dict(claims)),
        source=source,
        expires_at=expires_at,
        sign_in=sign_in_from_claims(claims),
        issuer=issuer,
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
