"""Where idgate's own endpoints live, as pure data: the server dispatches on it and
`idgate explain` reports it, so the two can never disagree about which paths are not routes."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from proxy.config.model import Route


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
    SIGNED_OUT = "signed_out"
    ROBOTS = "robots.txt"
    EXT_AUTHZ = "ext_authz"
    """A prefix, not one path: Envoy's HTTP ext_authz appends the original path to it."""


#: Health paths sit at the root (where probes look), and so does robots.txt (where crawlers do);
#: the rest under the prefix.
_AT_ROOT = frozenset({Endpoint.HEALTHZ, Endpoint.READYZ, Endpoint.ROBOTS})


@lru_cache(maxsize=8)
def endpoint_paths(prefix: str) -> dict[str, Endpoint]:
    """Exact normalised path -> endpoint."""
    return {
        (f"/{endpoint}" if endpoint in _AT_ROOT else f"{prefix}/{endpoint}"): endpoint
        for endpoint in Endpoint
    }


def answers_robots(route: Route | None) -> bool:
    """Whether idgate answers `/robots.txt` itself (everything disallowed) rather than the route
    it matches: unless that route is public. A crawler cannot sign in, so from any other route it
    would only ever get a sign-in redirect, and a crawler must not meet idgate's sign-in."""
    return route is None or not route.policy.public


def own_endpoint(raw_path: str, path: str, prefix: str) -> Endpoint | None:
    """The own endpoint a request names by its raw and normalised path, or None for the routes
    (`/robots.txt` is then still subject to `answers_robots`).

    An ext_authz check is recognised by the raw path first: `{prefix}/ext_authz/../jwks` is a
    check of `/jwks`, never an answer from idgate's own `{prefix}/jwks`.
    """
    if ext_authz_target(raw_path, prefix) is not None:
        return Endpoint.EXT_AUTHZ
    return endpoint_paths(prefix).get(path)


def ext_authz_target(raw_path: str, prefix: str) -> str | None:
    """The original request target in an Envoy ext_authz check (`path_prefix` + original path,
    query included), or None when `raw_path` is not one.

    Read from the raw path, before normalisation: normalising `{prefix}/ext_authz/../jwks` as a
    whole would answer for another of idgate's endpoints instead of judging `/jwks`.
    """
    base = f"{prefix}/{Endpoint.EXT_AUTHZ}"
    if not raw_path.startswith(base):
        return None
    rest = raw_path[len(base) :]
    if rest == "" or rest.startswith("?"):
        return "/" + rest
    return rest if rest.startswith("/") else None
