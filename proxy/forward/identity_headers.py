"""The identity idgate attaches for an upstream: plain headers and the signed assertion."""

from __future__ import annotations

from typing import Final

from proxy.config.model import Route
from proxy.identity.assertion import AssertionSigner
from proxy.identity.principal import Principal

USER: Final = "X-Authenticated-User"
EMAIL: Final = "X-Authenticated-Email"
GROUPS: Final = "X-Authenticated-Groups"
ASSERTION: Final = "X-Authenticated-Assertion"
ISSUER: Final = "X-Authenticated-Issuer"

_FORBIDDEN_IN_VALUE: Final = dict.fromkeys(range(0x20)) | {0x7F: None}


def _header_safe(value: str) -> str:
    """Claims are the provider's data, not ours: drop control characters so no claim value can
    split a header (aiohttp would refuse the whole request instead)."""
    return value.translate(_FORBIDDEN_IN_VALUE)


def identity_headers(principal: Principal, route: Route, signer: AssertionSigner) -> dict[str, str]:
    headers = {
        USER: _header_safe(principal.user),
        GROUPS: _header_safe(",".join(sorted(principal.groups))),
        ASSERTION: signer.sign(principal, route),
    }
    if principal.email is not None:
        headers[EMAIL] = _header_safe(principal.email)
    if principal.issuer is not None:
        headers[ISSUER] = principal.issuer
    return headers
