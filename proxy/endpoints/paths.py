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


@lru_cache(maxsize=8)
def endpoint_paths(prefix: str) -> dict[str, Endpoint]:
    """Exact normalised path -> endpoint; health paths sit at the root, the rest under `prefix`."""
    return {
        "/healthz": Endpoint.HEALTHZ,
        "/readyz": Endpoint.READYZ,
        f"{prefix}/jwks": Endpoint.JWKS,
        f"{prefix}/userinfo": Endpoint.USERINFO,
    }
