"""`idgate demo`: the dev issuer, an echo upstream per route, and idgate in front, on loopback.

The demo only supplies a config file and the two helper servers. idgate itself runs the
production path: the config goes through `load_settings` (what `idgate serve` and `idgate check`
use) and the proxy through `serve()` (proxy/server/serve.py), the function `idgate serve` runs
with one worker, which also handles SIGINT and SIGTERM. The helpers are stopped once it returns.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys
import tempfile
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp import web

from proxy.config.load import load_settings
from proxy.demo.banner import Ready, ready_text
from proxy.demo.config import (
    API_AUDIENCE,
    CLIENT_ID,
    DEMO_ROUTES,
    TOUR,
    config_document,
    write_config,
)
from proxy.demo.directory import DemoClient
from proxy.demo.issuer import DevIssuer, IssuerSettings
from proxy.demo.ports import free_loopback_ports
from proxy.demo.upstream import AssertionKeys, UpstreamSettings, upstream_app
from proxy.observability.decision_log import start_log_writer
from proxy.server.serve import serve

SERVICE_CLIENT_ID: Final = "demo-service"
#: A fixed, published demo credential: the dev issuer signs anyone in without a password anyway.
SERVICE_SECRET: Final = "demo-service-secret"  # noqa: S105
LOOPBACK: Final = "127.0.0.1"
_READY_TIMEOUT_SECONDS: Final = 10.0
_READY_POLL_SECONDS: Final = 0.02
EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130


def run_demo(*, port: int, environ: Mapping[str, str]) -> int:
    """Run the demo until SIGINT or SIGTERM; the exit code."""
    if not _port_is_free(port):
        sys.stderr.write(
            f"idgate demo: port {port} on {LOOPBACK} is in use; pick another with --port\n"
        )
        return EXIT_FAILED
    listener = start_log_writer("INFO")
    try:
        with tempfile.TemporaryDirectory(prefix="idgate-demo-") as directory:
            asyncio.run(_demo(port=port, directory=Path(directory), environ=environ))
    except KeyboardInterrupt:  # Ctrl-C before the proxy took over the signals
        return EXIT_INTERRUPTED
    except (OSError, TimeoutError, RuntimeError, aiohttp.ClientError) as error:
        sys.stderr.write(f"idgate demo: could not start: {error!r}\n")
        return EXIT_FAILED
    finally:
        listener.stop()
    return 0


async def _demo(*, port: int, directory: Path, environ: Mapping[str, str]) -> None:
    public_url = f"http://{LOOPBACK}:{port}"
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession(trust_env=False))
        issuer_socket, issuer_url = _bind(stack)
        idgate_client = DemoClient(
            client_id=CLIENT_ID,
            secret=secrets.token_urlsafe(24),
            redirect_uris=frozenset({f"{public_url}/oauth2/callback"}),
            post_logout_redirect_uris=frozenset(
                {f"{public_url}/", f"{public_url}/oauth2/signed_out"}
            ),
        )
        service_client = DemoClient(
            client_id=SERVICE_CLIENT_ID,
            secret=SERVICE_SECRET,
            client_credentials=True,
            service_groups=("services",),
        )
        issuer = DevIssuer(
            IssuerSettings(
                url=issuer_url,
                clients=(idgate_client, service_client),
                audiences=(API_AUDIENCE,),
            )
        )
        await _serve_on(stack, issuer.app(), issuer_socket)

        keys = AssertionKeys(f"{public_url}/oauth2/jwks", http)
        upstreams: dict[str, str] = {}
        for route in DEMO_ROUTES:
            upstream_socket, upstreams[route.name] = _bind(stack)
            service = UpstreamSettings(audience=route.name, issuer=public_url, links=TOUR)
            await _serve_on(stack, upstream_app(service, keys), upstream_socket)

        metrics_port = free_loopback_ports(1)[0]
        config_path = write_config(
            directory,
            config_document(
                port=port,
                metrics_port=metrics_port,
                issuer=issuer_url,
                client_secret=idgate_client.secret,
                session_secret=secrets.token_urlsafe(32),
                upstreams=upstreams,
            ),
        )
        settings = load_settings(config_path, environ)
        serving = asyncio.create_task(
            serve(settings, config_path=config_path, environ=environ, with_metrics=True)
        )
        try:
            await _wait_until_ready(http, public_url, serving)
            token = await _service_token(http, issuer_url)
        except BaseException:
            serving.cancel()
            await asyncio.wait({serving})
            raise
        sys.stdout.write(
            ready_text(
                Ready(
                    public_url=public_url,
                    issuer_url=issuer_url,
                    metrics_url=f"http://{LOOPBACK}:{metrics_port}/metrics",
                    config_path=config_path,
                    service_client_id=SERVICE_CLIENT_ID,
                    service_secret=SERVICE_SECRET,
                    token=token,
                )
            )
        )
        sys.stdout.flush()
        await serving


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the listener will: connections of an earlier run still in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _bind(stack: AsyncExitStack) -> tuple[socket.socket, str]:
    """A socket bound to a free loopback port, and its URL: known before its server starts."""
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stack.callback(bound.close)
    bound.bind((LOOPBACK, 0))
    return bound, f"http://{LOOPBACK}:{bound.getsockname()[1]}"


async def _serve_on(stack: AsyncExitStack, app: web.Application, bound: socket.socket) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.SockSite(runner, bound).start()


async def _wait_until_ready(
    http: aiohttp.ClientSession, public_url: str, serving: asyncio.Task[None]
) -> None:
    """Until idgate's `/readyz` says ready (provider metadata and keys loaded)."""
    async with asyncio.timeout(_READY_TIMEOUT_SECONDS):
        while True:
            if serving.done():
                serving.result()
                raise RuntimeError("idgate stopped while starting")
            try:
                async with http.get(f"{public_url}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass  # not listening yet
            await asyncio.sleep(_READY_POLL_SECONDS)


async def _service_token(http: aiohttp.ClientSession, issuer_url: str) -> str:
    """A client_credentials access token for the demo service, from the issuer's token endpoint."""
    async with http.post(
        f"{issuer_url}/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": aiohttp.encode_basic_auth(SERVICE_CLIENT_ID, SERVICE_SECRET)},
    ) as response:
        response.raise_for_status()
        document = await response.json()
    return str(document["access_token"])
