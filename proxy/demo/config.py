"""The idgate configuration the demo runs: an ordinary config file, read by the real loader.

Written to the demo's temporary directory (mode 0600: it holds this run's random secrets) and
loaded with `proxy.config.load.load_settings`, exactly as `idgate serve` and `idgate check` load
any file, so what the demo shows is what that config does in production.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from proxy.demo.upstream import Link

CLIENT_ID: Final = "idgate-demo"
"""idgate's client at the dev issuer."""
API_AUDIENCE: Final = "demo-api"
"""The `aud` idgate accepts on bearer tokens (every dev-issuer access token carries it)."""
CONFIG_NAME: Final = "idgate-demo.yaml"

_HEADER: Final = """\
# Written by `idgate demo` for this run only, and removed when it stops. The issuer it trusts is
# the demo's DEV-ONLY issuer; the secrets below are random for this run.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoRoute:
    name: str
    path: str
    summary: str
    policy: Mapping[str, Any]
    """The route's policy keys, as written in YAML."""


#: In match order: `/` comes last, or it would match every path.
DEMO_ROUTES: Final = (
    DemoRoute(name="public", path="/public", summary="public: no sign-in", policy={"public": True}),
    DemoRoute(
        name="eng",
        path="/eng",
        summary="group engineering",
        policy={"allow": {"groups": ["engineering"]}},
    ),
    DemoRoute(
        name="admin",
        path="/admin",
        summary="group admins",
        policy={"allow": {"groups": ["admins"]}},
    ),
    DemoRoute(
        name="beta",
        path="/beta",
        summary="group beta, mode: audit (let through, logged as would_deny)",
        policy={"mode": "audit", "allow": {"groups": ["beta"]}},
    ),
    DemoRoute(
        name="api",
        path="/api",
        summary="any valid bearer token (or a session)",
        policy={"allow": {"authenticated": True}},
    ),
    DemoRoute(
        name="home",
        path="/",
        summary="any signed-in user",
        policy={"allow": {"authenticated": True}},
    ),
)

#: The pages every demo upstream page links to.
TOUR: Final = (
    Link(path="/", label="home"),
    Link(path="/public", label="/public"),
    Link(path="/eng", label="/eng"),
    Link(path="/admin", label="/admin"),
    Link(path="/beta", label="/beta"),
    Link(path="/api/whoami", label="/api/whoami"),
    Link(path="/oauth2/userinfo", label="/oauth2/userinfo"),
    Link(path="/oauth2/sign_out", label="sign out"),
)


def config_document(
    *,
    port: int,
    metrics_port: int,
    issuer: str,
    client_secret: str,
    session_secret: str,
    upstreams: Mapping[str, str],
) -> dict[str, Any]:
    """The config as YAML data; `upstreams` maps each route name to its demo upstream's URL."""
    return {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "public_url": f"http://127.0.0.1:{port}",
        "oidc": {
            "issuer": issuer,
            "client_id": CLIENT_ID,
            "client_secret": client_secret,
            "audiences": [API_AUDIENCE],
            # The dev issuer marks its access tokens `typ: at+jwt` (RFC 9068), so its ID tokens
            # (`typ: JWT`) can never pass as one.
            "require_access_token_type": True,
        },
        "session": {
            "secret": session_secret,
            # Sessions are re-checked at the issuer every minute: continuous verification to watch.
            "refresh_interval": "1m",
        },
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "routes": [
            {"name": route.name, "path": route.path, "upstream": upstreams[route.name]}
            | dict(route.policy)
            for route in DEMO_ROUTES
        ],
    }


def write_config(directory: Path, document: Mapping[str, Any]) -> Path:
    path = directory / CONFIG_NAME
    path.touch(mode=0o600)
    path.write_text(_HEADER + yaml.safe_dump(dict(document), sort_keys=False), encoding="utf-8")
    return path
