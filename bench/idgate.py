"""idgate as an operator runs it: `idgate serve -c FILE`, with the settings it ships with.

One worker per core (the default), the decision log on (stderr, redirected to a file), the metrics
listener on, the signed assertion on every forwarded request (always). The benchmark route is the
last of `route_count`, after path-prefix routes that do not match, so route matching is paid in
full and 10 routes can be compared with 1,000.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Mapping
from typing import Any, Final

import yaml

from bench.plan import DECISION_CACHE_SECONDS
from bench.servers import Server, ServerFailed, Servers
from bench.tokens import GROUP
from proxy.demo.ports import free_loopback_ports

SECRET_VARIABLE: Final = "IDGATE_SESSION_SECRET"  # noqa: S105 (a variable name)
ROUTE_NAME: Final = "bench"
_LISTENING: Final = "idgate listening on"


def document(
    *,
    port: int,
    metrics_port: int,
    issuer: str,
    audience: str,
    upstream: str,
    route_count: int,
    session: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    decoys = [
        {
            "name": f"svc-{index:04d}",
            "path": f"/svc-{index:04d}",
            "upstream": upstream,
            "allow": {"groups": [f"team-{index:04d}", "sre"]},
        }
        for index in range(route_count - 1)
    ]
    bench = {
        "name": ROUTE_NAME,
        "path": "/bench",
        "upstream": upstream,
        "allow": {"groups": [GROUP]},
    }
    return {
        "listen": f"127.0.0.1:{port}",
        "public_url": f"http://127.0.0.1:{port}",
        # As behind nginx auth_request or a load balancer on the same host.
        "trusted_proxies": ["127.0.0.1"],
        "oidc": {
            "issuer": issuer,
            "client_id": "idgate",
            "audiences": [audience],
            "jwks_uri": f"{issuer}/jwks.json",
        },
        "session": {"secret": f"${{{SECRET_VARIABLE}}}", **(session or {})},
        "routes": [*decoys, bench],
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "log": {"level": "INFO", "decisions": True},
        # How long nginx+idgate may reuse an allow (direct to idgate, nothing caches it).
        "forward_auth": {"decision_cache_seconds": DECISION_CACHE_SECONDS},
    }


def worker_count() -> int:
    return len(os.sched_getaffinity(0))


def start(
    servers: Servers,
    *,
    name: str,
    issuer: str,
    audience: str,
    upstream: str,
    route_count: int,
    secret: str,
    session: Mapping[str, Any] | None = None,
) -> tuple[Server, int]:
    """A ready idgate and its metrics port; `session` adds to its `session` settings."""
    port, metrics_port = free_loopback_ports(2)
    config = servers.workdir / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            document(
                port=port,
                metrics_port=metrics_port,
                issuer=issuer,
                audience=audience,
                upstream=upstream,
                route_count=route_count,
                session=session,
            ),
            sort_keys=False,
        )
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IDGATE_")}
    environ[SECRET_VARIABLE] = secret
    server = servers.start(
        name,
        [sys.executable, "-m", "proxy", "serve", "-c", str(config)],
        port=port,
        environ=environ,
        ready_ports=[metrics_port],
    )
    _wait_for_workers(server)
    return server, metrics_port


def _wait_for_workers(server: Server) -> None:
    """Every worker logged that it listens (each has fetched the provider keys by then)."""
    output = server.logs[0]
    deadline = time.monotonic() + 30.0
    while output.read_text(errors="replace").count(_LISTENING) < worker_count():
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise ServerFailed(f"{server.name} workers did not all start; see {output}")
        time.sleep(0.05)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
