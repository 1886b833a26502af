"""A Runtime and RequestContexts for tests that call a stage or forwarder directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientSession
from prometheus_client import CollectorRegistry

from proxy.config.model import Settings
from proxy.observability.metrics import Metrics
from proxy.runtime import Runtime, build_runtime, retire_runtime
from proxy.stages.context import RequestContext
from tests.support.settings import make_settings

#: Nothing listens on port 9 (discard) here: a runtime built for it starts without provider keys.
NO_PROVIDER = "http://127.0.0.1:9"


@asynccontextmanager
async def started_runtime(settings: Settings | None = None) -> AsyncIterator[Runtime]:
    """A Runtime as idgate builds it (with its own metrics registry), retired on exit."""
    async with ClientSession() as http:
        runtime = await build_runtime(
            settings or make_settings(NO_PROVIDER, NO_PROVIDER),
            http=http,
            metrics=Metrics(CollectorRegistry()),
        )
        try:
            yield runtime
        finally:
            await retire_runtime(runtime, None)


def make_context(runtime: Runtime, **fields: Any) -> RequestContext:
    """A context as accept would make it for `GET https://app.example.com/` from 203.0.113.9;
    `fields` override any of it."""
    defaults: dict[str, Any] = {
        "runtime": runtime,
        "request_id": "req-1",
        "peer_ip": "203.0.113.9",
        "from_trusted_proxy": False,
        "client_ip": "203.0.113.9",
        "scheme": "https",
        "host": "app.example.com",
        "method": "GET",
        "path": "/",
        "upstream_path": "/",
        "query": "",
        "authority": "app.example.com",
    }
    return RequestContext(**(defaults | fields))
