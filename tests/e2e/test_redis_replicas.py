"""Two `idgate serve` replicas sharing sessions through Redis Sentinel and through Redis Cluster:
a session opens at both, and sign-out at one ends it at both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.idgate_process import IdgateProcess, base_document
from tests.e2e.minted_session import mint_session
from tests.e2e.oidc_provider import OidcProvider
from tests.e2e.redis_topologies import running_cluster, running_sentinel_set
from tests.support.upstream import EchoUpstream, serve_echo


@pytest.fixture
async def echo(aiohttp_server: AiohttpServer) -> EchoUpstream:
    return await serve_echo(aiohttp_server)


@pytest.fixture(params=["sentinel", "cluster"])
def redis_block(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The `session.redis` block of a running Sentinel set or Cluster."""
    directory = tmp_path / "redis"
    directory.mkdir()
    if request.param == "sentinel":
        with running_sentinel_set(directory) as sentinels:
            yield sentinels.document()
    else:
        with running_cluster(directory) as cluster:
            yield {"cluster": {"nodes": [f"127.0.0.1:{port}" for port in cluster.ports]}}


@pytest.fixture
def replicas(
    oidc_provider: OidcProvider,
    redis_block: dict[str, Any],
    echo: EchoUpstream,
    tmp_path: Path,
) -> Iterator[list[IdgateProcess]]:
    document: dict[str, Any] = base_document(
        oidc_provider.issuer,
        [{"name": "app", "path": "/", "upstream": echo.url, "allow": {"authenticated": True}}],
    )
    document["session"] |= {"store": "redis", "redis": redis_block}
    started: list[IdgateProcess] = []
    try:
        for index in range(2):
            workdir = tmp_path / f"idgate-{index}"
            workdir.mkdir()
            started.append(IdgateProcess(workdir, document))
        for process in started:
            process.wait_until_ready()
        yield started
    finally:
        for process in started:
            process.stop()


async def status_at(http: aiohttp.ClientSession, gate: IdgateProcess, cookie: str) -> int:
    async with http.get(f"{gate.url}/app", headers={"Cookie": cookie}) as response:
        return response.status


async def test_one_session_across_replicas_until_sign_out_at_either(
    replicas: list[IdgateProcess], echo: EchoUpstream
) -> None:
    """A session opens at both replicas; signing out at the second ends it at the first, and a
    copy of the old cookie is refused (401) by both."""
    first, second = replicas
    cookie = await mint_session(first.config_path, "alice")
    async with aiohttp.ClientSession() as http:
        assert [await status_at(http, gate, cookie) for gate in (first, second, first)] == [200] * 3
        async with http.get(
            f"{second.url}/oauth2/sign_out", headers={"Cookie": cookie}, allow_redirects=False
        ) as signed_out:
            assert signed_out.status == 302
        assert [await status_at(http, gate, cookie) for gate in (first, second)] == [401, 401]
    assert echo.calls == 3
    for entry in echo.received:
        headers = entry["headers"]
        assert isinstance(headers, dict)
        assert headers["x-authenticated-user"] == "alice"
