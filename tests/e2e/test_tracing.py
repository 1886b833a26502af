"""`idgate serve` with `tracing`: a request's spans reach an OTLP/HTTP collector, and what is
still queued at SIGTERM is exported before the process exits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pytest_aiohttp import AiohttpServer

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import IdgateProcess, base_document
from tests.support.otlp_collector import serve_collector
from tests.support.upstream import serve_echo

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
EXIT_TIMEOUT = 20.0


async def test_spans_are_exported_by_the_time_idgate_exits(
    oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """A bearer request through a real idgate process is traced under the client's trace; the
    batch exporter (5 s between exports by default) is flushed by SIGTERM, so every span of it
    is at the collector before idgate exits 0."""
    collector = await serve_collector(aiohttp_server)
    upstream = await serve_echo(aiohttp_server)
    routes = [
        {"name": "api", "path": "/api", "upstream": upstream.url, "allow": {"authenticated": True}}
    ]
    document = {
        **base_document(oidc_provider.issuer, routes),
        "tracing": {"otlp_endpoint": collector.url, "service_name": "idgate-e2e"},
    }
    gate = IdgateProcess(tmp_path, document)
    try:
        await asyncio.to_thread(gate.wait_until_ready)
        token = await oidc_provider.token_for_user("alice")
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{gate.url}/api/items",
                headers={
                    "Authorization": f"Bearer {token}",
                    "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
                },
            ) as response,
        ):
            assert response.status == 200
            seen = await response.json()
        gate.send_term()
        # The collector answers on this loop while idgate's exporter flushes to it.
        assert await asyncio.to_thread(gate.wait_exit, EXIT_TIMEOUT) == 0
    finally:
        gate.stop()

    # The readiness probe before it has a trace of its own.
    spans = {span.name: span for span in collector.spans if span.trace_id.hex() == TRACE_ID}
    assert set(spans) == {"GET api", "identify", "authorize", "forward"}
    assert spans["GET api"].parent_span_id.hex() == PARENT_ID
    assert spans["GET api"].kind == Span.SPAN_KIND_SERVER
    assert seen["headers"]["traceparent"] == (f"00-{TRACE_ID}-{spans['forward'].span_id.hex()}-01")
    assert collector.service_names == {"idgate-e2e"}
    assert token not in str(collector.spans)
