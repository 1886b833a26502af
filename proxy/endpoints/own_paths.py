"""Where idgate's own endpoints live, as pure data: the server dispatches on it and
`idgate explain` reports it, so the two can never disagree about which paths are not routes."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache


class Endpoint(StrEnum):
    HEALTHZ = "healthz"
    READYZ = "readyz"
    JWKS = "jwks"
    USERINFO = "userinfo"
    START = "start"
    SIGN_IN = "sign_in"
    CALLBACK = "callback"
    SIGN_OUT = "sign_out"
    BACKCHANNEL_LOGOUT = "backchannel_logout"
    AUTH = "auth"


#: Health paths sit at the root (where probes look); the rest under the prefix.
_AT_ROOT = frozenset({Endpoint.HEALTHZ, Endpoint.READYZ})


@lru_cache(maxsize=8)
def endpoint_paths(prefix: str) -> dict[str, Endpoint]:
    """Exact normalised path -> endpoint."""
    return {
        (f"/{endpoint}" if endpoint in _AT_ROOT else f"{prefix}/{endpoint}"): endpoint
        for endpoint in Endpoint
    }
