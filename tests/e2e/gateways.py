"""Real nginx and Caddy in front of idgate, configured from the examples users copy.

deploy/nginx/idgate.conf and deploy/caddy/Caddyfile are written with the addresses a reader would
have (idgate on 127.0.0.1:4180, the tool at internal-tool:8080, the site tools.example.com); the
tests replace exactly those strings with their own loopback ports, so what the docs show is what
runs here. Each gateway writes its files, temp and state into the test's directory, logs to a
pipe, and counts as ready once it logs that it serves (both open their listeners first).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Final, Protocol

import pytest

from proxy.demo.ports import free_loopback_ports
from tests.e2e.idgate_process import (
    LogLines,
    base_document,
    running_idgate,
)
from tests.e2e.tools import require_tool, stop_process

REPOSITORY: Final = Path(__file__).resolve().parents[2]
NGINX_EXAMPLE: Final = REPOSITORY / "deploy" / "nginx" / "idgate.conf"
CADDY_EXAMPLE: Final = REPOSITORY / "deploy" / "caddy" / "Caddyfile"
TRAEFIK_EXAMPLE: Final = REPOSITORY / "deploy" / "traefik" / "dynamic.yml"
GATEWAYS_DOC: Final = REPOSITORY / "docs" / "gateways.md"
NGINX: Final = "/usr/sbin/nginx"

#: The addresses the examples are written with.
EXAMPLE_IDGATE: Final = "127.0.0.1:4180"
EXAMPLE_UPSTREAM: Final = "internal-tool:8080"
EXAMPLE_SITE: Final = "tools.example.com"

START_TIMEOUT: Final = 15.0
STOP_TIMEOUT: Final = 5.0


def gateway_routes(upstream: str) -> list[dict[str, Any]]:
    """The one policy every gateway test judges with: a public route, an admins-only one, and
    everything else for example.com addresses (alice and bob; carol is at example.org)."""
    return [
        {"name": "public", "path": "/public", "upstream": upstream, "public": True},
        {"name": "admin", "path": "/admin", "upstream": upstream, "allow": {"groups": ["admins"]}},
        {"name": "tools", "path": "/", "upstream": upstream, "allow": {"domains": ["example.com"]}},
    ]


def gateway_document(
    issuer: str, upstream: str, *, trusted_proxies: Sequence[str] = ("127.0.0.1/32",)
) -> dict[str, Any]:
    """An idgate config for `gateway_routes` that believes forwarding headers from these peers."""
    document = base_document(issuer, gateway_routes(upstream))
    document["trusted_proxies"] = list(trusted_proxies)
    return document


def render(example: Path, replacements: Mapping[str, str]) -> str:
    """`example` with each key replaced by its value; a key it no longer contains is an error, so
    an edited example cannot silently stop being the one tested."""
    text = example.read_text(encoding="utf-8")
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"{example.name} no longer contains {old!r}")
        text = text.replace(old, new)
    return text


class Gateway:
    """A running nginx or Caddy on a loopback port; create one with running_nginx/running_caddy."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        workdir: Path,
        port: int,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.port = port
        self._process = subprocess.Popen(
            argv,
            cwd=workdir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self._process.stderr is not None
        self._stderr = LogLines(self._process.stderr, workdir / "stderr.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_log(self, ready: str, name: str) -> None:
        """Block until a stderr line contains `ready`; fail with the log tail if it never does."""
        try:
            self._stderr.wait_for(lambda line: ready in line, start=0, timeout=START_TIMEOUT)
        except LookupError:
            self.stop()
            tail = "\n".join(self._stderr.snapshot()[-20:])
            pytest.fail(f"{name} did not start; its stderr:\n{tail}", pytrace=False)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT (idempotent)."""
        stop_process(self._process, STOP_TIMEOUT)
        self._stderr.join()


def _nginx_main(workdir: Path, site: Path) -> str:
    """The main config around the example: everything nginx writes stays in `workdir`."""
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Workers run as root like the master: they buffer into `workdir`, which only root may enter.
    return (
        "user root;\n"
        "error_log stderr notice;\n"
        "events { worker_connections 128; }\n"
        "http {\n"
        f"    access_log {workdir / 'access.log'};\n"
        f"{temp}\n"
        f"    include {site};\n"
        "}\n"
    )


@contextmanager
def running_nginx(workdir: Path, *, idgate: str, upstream: str, port: int = 0) -> Iterator[Gateway]:
    """nginx serving deploy/nginx/idgate.conf on `port` (0: a free one), with idgate and the tool
    at these `host:port` addresses; stopped when the block ends."""
    port = port or free_loopback_ports(1)[0]
    site = workdir / "idgate.conf"
    site.write_text(
        render(
            NGINX_EXAMPLE,
            {
                "listen 80;": f"listen 127.0.0.1:{port};",
                f"http://{EXAMPLE_IDGATE};": f"http://{idgate};",
                f"http://{EXAMPLE_UPSTREAM};": f"http://{upstream};",
            },
        ),
        encoding="utf-8",
    )
    with nginx_serving(workdir, site, port=port) as gateway:
        yield gateway


def nginx_argv(workdir: Path, site: Path) -> list[str]:
    """nginx's command line for `site` (a file for inside http {}), everything it writes kept
    in `workdir`; with `-t` appended it only tests the configuration."""
    nginx = require_tool(NGINX, "Debian package nginx-light runs the nginx tests")
    main = workdir / "nginx.conf"
    main.write_text(_nginx_main(workdir, site), encoding="utf-8")
    daemon = f"daemon off; pid {workdir / 'nginx.pid'};"
    return [nginx, "-e", "stderr", "-p", str(workdir), "-c", str(main), "-g", daemon]


@contextmanager
def nginx_serving(workdir: Path, site: Path, *, port: int) -> Iterator[Gateway]:
    """nginx serving `site`, which listens on loopback `port`; stopped when the block ends."""
    gateway = Gateway(nginx_argv(workdir, site), workdir=workdir, port=port)
    try:
        # Logged by the master after it has opened every listening socket.
        gateway.wait_for_log("start worker processes", "nginx")
        yield gateway
    finally:
        gateway.stop()


@contextmanager
def running_caddy(workdir: Path, *, idgate: str, upstream: str, port: int = 0) -> Iterator[Gateway]:
    """Caddy serving deploy/caddy/Caddyfile over plain http on loopback `port` (0: a free one),
    with idgate and the tool at these `host:port` addresses; stopped when the block ends."""
    caddy = require_tool("caddy", "Debian package caddy runs the Caddy forward_auth tests")
    port = port or free_loopback_ports(1)[0]
    site = render(
        CADDY_EXAMPLE,
        {
            f"{EXAMPLE_SITE} {{": f"http://127.0.0.1:{port} {{",
            EXAMPLE_IDGATE: idgate,
            EXAMPLE_UPSTREAM: upstream,
        },
    )
    config = workdir / "Caddyfile"
    # No admin API (its default port is shared by every Caddy on the machine) and loopback only.
    config.write_text("{\n\tadmin off\n\tdefault_bind 127.0.0.1\n}\n\n" + site, encoding="utf-8")
    home = str(workdir / "home")
    environment = os.environ | {"HOME": home, "XDG_CONFIG_HOME": home, "XDG_DATA_HOME": home}
    argv = [caddy, "run", "--adapter", "caddyfile", "--config", str(config)]
    gateway = Gateway(argv, workdir=workdir, port=port, environment=environment)
    try:
        gateway.wait_for_log('"msg":"serving initial configuration"', "caddy")
        yield gateway
    finally:
        gateway.stop()


class GatewayRunner(Protocol):
    """running_nginx or running_caddy."""

    def __call__(
        self, workdir: Path, *, idgate: str, upstream: str, port: int = 0
    ) -> AbstractContextManager[Gateway]: ...


@contextmanager
def idgate_behind(
    run: GatewayRunner, workdir: Path, document: Mapping[str, Any], *, upstream: str
) -> Iterator[Gateway]:
    """A gateway in front of the `upstream` URL, and an idgate serving `document` behind it with
    the gateway's URL as its `public_url`, as a browser sign-in through the gateway needs."""
    port = free_loopback_ports(1)[0]
    (workdir / "idgate").mkdir()
    (workdir / "gateway").mkdir()
    with (
        running_idgate(
            workdir / "idgate", document, public_url=f"http://127.0.0.1:{port}"
        ) as idgate,
        run(
            workdir / "gateway",
            idgate=f"127.0.0.1:{idgate.port}",
            upstream=upstream.removeprefix("http://"),
            port=port,
        ) as gateway,
    ):
        yield gateway
