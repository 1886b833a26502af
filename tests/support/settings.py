"""Settings for tests, built from the model directly (the loader has its own tests)."""

from __future__ import annotations

import ipaddress
from typing import Any

from proxy.config.model import (
    ListenAddress,
    OIDCSettings,
    Policy,
    PolicyMode,
    Route,
    Rule,
    Secret,
    SessionSettings,
    Settings,
)

SESSION_SECRET = "test-session-secret-0123456789abcdef"
AUDIENCE = "https://api.idgate.test"


def standard_routes(upstream: str) -> tuple[Route, ...]:
    """Routes most proxy tests use: public, group-gated, denied group, audit, token pass-through."""
    return (
        Route(name="public", path="/public", upstream=upstream, policy=Policy(public=True)),
        Route(
            name="admin",
            path="/admin",
            upstream=upstream,
            policy=Policy(
                allow=Rule(groups=frozenset({"admins"})),
                deny=Rule(users=frozenset({"mallory"})),
            ),
        ),
        Route(
            name="beta",
            path="/beta",
            upstream=upstream,
            policy=Policy(allow=Rule(groups=frozenset({"beta"})), mode=PolicyMode.AUDIT),
        ),
        Route(
            name="api",
            path="/api",
            upstream=upstream,
            pass_access_token=True,
            policy=Policy(allow=Rule(authenticated=True)),
        ),
        Route(
            name="check-only",
            path="/check-only",
            policy=Policy(allow=Rule(authenticated=True)),
        ),
    )


def make_settings(issuer: str, upstream: str, /, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "listen": ListenAddress(host="127.0.0.1", port=0),
        "public_url": "https://idgate.test",
        "oidc": OIDCSettings(
            issuer=issuer,
            client_id="idgate",
            audiences=(AUDIENCE,),
            http_timeout_seconds=2.0,
            jwks_min_refresh_seconds=0.0,
        ),
        "session": SessionSettings(secrets=(Secret(SESSION_SECRET),)),
        "routes": standard_routes(upstream),
        "trusted_proxies": (ipaddress.ip_network("10.99.0.0/16"),),
    }
    values.update(overrides)
    return Settings(**values)
