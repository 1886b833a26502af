"""With several workers the supervisor's `/metrics` sums every worker's requests; a worker flushes
its counts there every second (proxy/observability/buffers.py), so a scrape lags by at most that."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from pytest_aiohttp import AiohttpServer

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate, sample
from tests.support.upstream import serve_echo

REQUESTS = 40
#: Far above the flush interval, so only a lost count can run it out.
COUNT_TIMEOUT = 10.0
POLL_SECONDS = 0.05


async def _requests_total_once_at_least(gate: IdgateProcess, expected: float) -> float:
    """`idgate_requests_total` of the public route, as soon as it reaches `expected`."""
    labels = {"route": "public", "method": "GET", "status_class": "2xx"}
    deadline = time.monotonic() + COUNT_TIMEOUT
    while True:
        total = sample(await gate.scrape(), "idgate_requests_total", **labels)
        if total >= expected or time.monotonic() > deadline:
            return total
        await asyncio.sleep(POLL_SECONDS)  # the flush happens in another process: poll for it


async def test_the_supervisor_counts_every_request_of_every_worker(
    oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    upstream = await serve_echo(aiohttp_server)
    routes = [{"name": "public", "path": "/public", "upstream": upstream.url, "public": True}]
    document = base_document(oidc_provider.issuer, routes)
    # A connection per request, so the kernel spreads them over both workers.
    connector = aiohttp.TCPConnector(force_close=True)
    with running_idgate(tmp_path, document, workers=2) as gate:
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(REQUESTS):
                async with http.get(f"{gate.url}/public") as response:
                    assert response.status == 200

        assert await _requests_total_once_at_least(gate, REQUESTS) == REQUESTS
