"""An OTLP/HTTP trace collector stand-in: takes `POST /v1/traces` (protobuf), as the
OpenTelemetry Collector's otlp receiver does, and keeps the decoded spans for a test to read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pytest_aiohttp import AiohttpServer

#: Long enough for a loaded machine; a test waiting this long has failed.
EXPORT_TIMEOUT = 10.0


@dataclass(kw_only=True)
class OtlpCollector:
    url: str = ""
    spans: list[Span] = field(default_factory=list)
    service_names: set[str] = field(default_factory=set)
    headers: list[dict[str, str]] = field(default_factory=list)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        async with self._arrived:
            self.headers.append({name.lower(): value for name, value in request.headers.items()})
            for resource_spans in export.resource_spans:
                for attribute in resource_spans.resource.attributes:
                    if attribute.key == "service.name":
                        self.service_names.add(attribute.value.string_value)
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
            self._arrived.notify_all()
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def wait_for(self, done: Callable[[list[Span]], bool]) -> list[Span]:
        """The spans received, once `done` says they are all there."""
        async with asyncio.timeout(EXPORT_TIMEOUT), self._arrived:
            await self._arrived.wait_for(lambda: done(self.spans))
        return list(self.spans)


async def serve_collector(aiohttp_server: AiohttpServer) -> OtlpCollector:
    collector = OtlpCollector()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.handle)
    server = await aiohttp_server(app)
    collector.url = f"http://{server.host}:{server.port}/v1/traces"
    return collector


def attributes(span: Span) -> dict[str, object]:
    """A span's attributes as plain values."""
    return {
        each.key: getattr(each.value, each.value.WhichOneof("value") or "string_value")
        for each in span.attributes
    }
