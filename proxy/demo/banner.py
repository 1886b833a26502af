"""What `idgate demo` prints once everything answers: where to go, who to be, what to run."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from proxy.demo.config import DEMO_ROUTES
from proxy.demo.directory import USERS
from proxy.demo.token_endpoint import SERVICE_TOKEN_SECONDS

READY_LINE: Final = "Ctrl-C stops everything."
"""The last line printed: everything above it is ready."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    public_url: str
    issuer_url: str
    metrics_url: str
    config_path: Path
    service_client_id: str
    service_secret: str = field(repr=False)
    token: str = field(repr=False)
    """A client_credentials access token for the curl line."""


def ready_text(ready: Ready) -> str:
    config = shlex.quote(str(ready.config_path))
    width = max(len(user.username) for user in USERS)
    users = [f"{user.username:<{width}}  {', '.join(user.groups)}" for user in USERS]
    route_width = max(len(route.path) for route in DEMO_ROUTES)
    routes = [f"{route.path:<{route_width}}  {route.summary}" for route in DEMO_ROUTES]
    fresh_token = shlex.join(
        [
            "curl",
            "-s",
            "-u",
            f"{ready.service_client_id}:{ready.service_secret}",
            "-d",
            "grant_type=client_credentials",
            f"{ready.issuer_url}/token",
        ]
    )
    curl = shlex.join(
        ["curl", "-H", f"Authorization: Bearer {ready.token}", f"{ready.public_url}/api/whoami"]
    )
    lines = [
        "",
        "idgate demo is ready. DEV ONLY: a throwaway issuer with demo users, on loopback.",
        "",
        f"  Open     {ready.public_url}/",
        *_block("Users", [*users, "(a button per user on the sign-in page; no passwords)"]),
        *_block("Routes", routes),
        f"  Metrics  {ready.metrics_url}",
        f"  Issuer   {ready.issuer_url}  (dev only)",
        *_block(
            "Config",
            [
                f"{ready.config_path}  (removed when the demo stops)",
                (
                    f"idgate explain -c {config} --url {ready.public_url}/admin "
                    "--user bob --group engineering"
                ),
            ],
        ),
        "",
        (
            f"Call the API as {ready.service_client_id} "
            f"(the token is valid for {SERVICE_TOKEN_SECONDS // 60} minutes):"
        ),
        curl,
        f"A fresh token: {fresh_token}",
        "",
        READY_LINE,
        "",
    ]
    return "\n".join(lines)


def _block(title: str, lines: list[str]) -> list[str]:
    return [f"  {title if index == 0 else '':<8} {line}" for index, line in enumerate(lines)]
