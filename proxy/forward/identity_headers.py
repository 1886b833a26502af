"""The identity idgate attaches for an upstream: plain headers, the signed assertion, the route's
`claim_headers` and, where the route asks, the browser session's access token."""

from __future__ import annotations

from typing import Any, Final

from proxy.config.model import Route
from proxy.identity.assertion import AssertionSigner
from proxy.identity.claims import claim_at
from proxy.identity.principal import CredentialSource, Principal

USER: Final = "X-Authenticated-User"
EMAIL: Final = "X-Authenticated-Email"
GROUPS: Final = "X-Authenticated-Groups"
ASSERTION: Final = "X-Authenticated-Assertion"
ISSUER: Final = "X-Authenticated-Issuer"
#: oauth2-proxy's name for the session's access token (its `--pass-access-token`); a client's
#: copy is removed by accept with the other identity headers.
SESSION_ACCESS_TOKEN: Final = "X-Forwarded-Access-Token"  # noqa: S105 (a header name)

_FORBIDDEN_IN_VALUE: Final = dict.fromkeys(range(0x20)) | {0x7F: None}


def _header_safe(value: str) -> str:
    """Claims are the provider's data, not ours: drop control characters so no claim value can
    split a header (aiohttp would refuse the whole request instead)."""
    return value.translate(_FORBIDDEN_IN_VALUE)


def _claim_header_value(value: Any) -> str | None:
    """A claim as one header value: a string or number as it is, a list of them joined with ","
    (as `X-Authenticated-Groups`); None (no header) for an absent claim or a nested object."""
    if isinstance(value, list | tuple):
        items = [text for item in value if (text := _claim_header_value(item)) is not None]
        return ",".join(items) if items else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return _header_safe(str(value))
    return None


def identity_headers(
    principal: Principal,
    route: Route,
    signer: AssertionSigner,
    *,
    session_access_token: str | None = None,
) -> dict[str, str]:
    """`session_access_token` is the access token of the session that identified `principal`,
    sent only where the route asks for it and only when a session (never a bearer token or a
    certificate) is the credential."""
    headers = {
        USER: _header_safe(principal.user),
        GROUPS: _header_safe(",".join(sorted(principal.groups))),
        ASSERTION: signer.sign(principal, route),
    }
    if principal.email is not None:
        headers[EMAIL] = _header_safe(principal.email)
    if principal.issuer is not None:
        headers[ISSUER] = principal.issuer
    for name, path in route.claim_headers:
        value = _claim_header_value(claim_at(principal.claims, path))
        if value:
            headers[name] = value
    if (
        route.pass_session_access_token
        and session_access_token
        and principal.source is CredentialSource.SESSION
    ):
        headers[SESSION_ACCESS_TOKEN] = _header_safe(session_access_token)
    return headers
