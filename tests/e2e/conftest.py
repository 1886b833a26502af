"""End-to-end fixtures: tool discovery and the real OpenID provider in tests/e2e/provider.

A missing tool skips a test with the reason, unless IDGATE_E2E=required (CI), where it fails:
a machine that cannot run the end-to-end suite must not pass by skipping all of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext
from pytest_aiohttp import AiohttpServer

from proxy.demo.ports import free_loopback_ports
from tests.e2e.browser import SignInSetup, browser_context, chromium
from tests.e2e.gateways import (
    Gateway,
    GatewayRunner,
    gateway_document,
    running_caddy,
    running_nginx,
)
from tests.e2e.idgate_process import IdgateProcess, running_idgate
from tests.e2e.oidc_provider import OidcProvider, ProviderError, running_provider
from tests.e2e.redis_fixture import persistent_redis_server, redis_server
from tests.e2e.tools import API_AUDIENCE, E2E_REQUIRED, require_tool
from tests.support.upstream import EchoUpstream, serve_echo

__all__ = [
    "API_AUDIENCE",
    "E2E_REQUIRED",
    "OidcProvider",
    "ProviderError",
    "persistent_redis_server",
    "redis_server",
    "require_tool",
]

E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e with `e2e`, so `-m e2e` / `-m 'not e2e'` select them."""
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """One provider per test module, read-only (see OidcProvider)."""
    with running_provider(tmp_path_factory.mktemp("oidc-provider"), shared=True) as provider:
        yield provider


@pytest.fixture(scope="module")
def module_oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """A provider for one module's tests only, which may point the web client at their idgates
    and revoke users; each test must expect what earlier ones left (grants, ended sessions)."""
    with running_provider(tmp_path_factory.mktemp("oidc-provider"), shared=False) as provider:
        yield provider


@pytest.fixture
def fresh_oidc_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    """A provider of the test's own, for key rotation, web-client changes, stop() and restart()
    (its signing keys are kept in a file in the test's directory for that)."""
    keys_file = tmp_path / "provider-keys.json"
    with running_provider(tmp_path, shared=False, keys_file=keys_file) as provider:
        yield provider


@pytest.fixture(scope="module")
def upstream_port() -> int:
    """The port a module's long-lived idgate (and gateways) forward to."""
    return free_loopback_ports(1)[0]


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer, upstream_port: int) -> EchoUpstream:
    """The echo upstream on the module's upstream port, for this test."""
    return await serve_echo(aiohttp_server, port=upstream_port)


@pytest.fixture(scope="module")
def idgate(
    oidc_provider: OidcProvider, upstream_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdgateProcess]:
    """The module's idgate for gateway tests: it trusts 127.0.0.1 (the gateways) for the
    original method and URI."""
    document = gateway_document(oidc_provider.issuer, f"http://127.0.0.1:{upstream_port}")
    with running_idgate(tmp_path_factory.mktemp("idgate"), document) as process:
        yield process


@pytest.fixture(scope="module")
def nginx(
    idgate: IdgateProcess, upstream_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with _in_front(running_nginx, idgate, upstream_port, tmp_path_factory) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def caddy(
    idgate: IdgateProcess, upstream_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    with _in_front(running_caddy, idgate, upstream_port, tmp_path_factory) as gateway:
        yield gateway


def _in_front(
    run: GatewayRunner,
    idgate: IdgateProcess,
    upstream_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> AbstractContextManager[Gateway]:
    """A gateway asking the module's idgate and proxying to the module's upstream port."""
    return run(
        tmp_path_factory.mktemp("gateway"),
        idgate=f"127.0.0.1:{idgate.port}",
        upstream=f"127.0.0.1:{upstream_port}",
    )


@pytest.fixture
def sign_in_setup(
    module_oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> Iterator[SignInSetup]:
    """Idgates of the test's own, registered at the module's provider for browser sign-in."""
    setup = SignInSetup(module_oidc_provider, upstream=upstream.url, workdir=tmp_path)
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium of the test's own (Playwright's async API is bound to its loop)."""
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile in `browser`: no cookies, loopback only."""
    async with browser_context(browser) as context:
        yield context
