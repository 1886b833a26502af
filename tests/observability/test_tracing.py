"""OpenTelemetry tracing through a real request: idgate in front of an echo upstream, its spans
exported over OTLP/HTTP to a collector stand-in and decoded with opentelemetry-proto."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from aiohttp import ClientSession
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from proxy.config.model import Secret, TraceContinuation, TracingSettings
from proxy.observability.decision_log import DECISION_LOGGER
from proxy.observability.metrics import Metrics
from proxy.runtime import build_runtime, retire_runtime
from tests.support.context import NO_PROVIDER
from tests.support.gate import Gate, StartGate
from tests.support.otlp_collector import OtlpCollector, attributes, serve_collector
from tests.support.settings import make_settings

CLIENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_PARENT_ID = "b7ad6b7169203331"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_PARENT_ID}-01"
STAGES = {"identify", "authorize", "forward"}


@pytest.fixture(autouse=True)
def _export_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's batch processor exports every 5 s by default; the tests wait on the collector."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")


@pytest.fixture
async def collector(aiohttp_server: AiohttpServer) -> OtlpCollector:
    return await serve_collector(aiohttp_server)


async def traced_gate(start_gate: StartGate, collector: OtlpCollector, **tracing: object) -> Gate:
    settings = TracingSettings(
        otlp_endpoint=collector.url,
        service_name="idgate-under-test",
        headers=(("x-api-key", Secret("collector-key")),),
        **tracing,  # type: ignore[arg-type]
    )
    return await start_gate(tracing=settings)


def one_request(spans: list[Span]) -> bool:
    return {span.name for span in spans} >= STAGES and any(
        s.kind == Span.SPAN_KIND_SERVER for s in spans
    )


def by_name(spans: list[Span]) -> dict[str, Span]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [span.name for span in spans]
    return named


async def test_request_spans_continue_the_incoming_trace_and_reach_the_upstream(
    start_gate: StartGate, collector: OtlpCollector, caplog: pytest.LogCaptureFixture
) -> None:
    """A traced request continues the client's `traceparent`: the server span's parent is the
    client's span, identify/authorize/forward hang under it, the upstream gets a `traceparent`
    of the same trace whose parent is the forward span, and the decision line names the trace."""
    gate = await traced_gate(start_gate, collector)
    token = gate.token("alice", groups=["admins"])
    caplog.set_level(logging.INFO, logger=DECISION_LOGGER)

    response = await gate.client.get(
        "/admin/panel?secret=1",
        headers={"Authorization": f"Bearer {token}", "traceparent": CLIENT_TRACEPARENT},
    )
    assert response.status == 200
    spans = by_name(await collector.wait_for(one_request))

    server = spans["GET admin"]
    assert server.kind == Span.SPAN_KIND_SERVER
    assert server.trace_id.hex() == CLIENT_TRACE_ID
    assert server.parent_span_id.hex() == CLIENT_PARENT_ID
    for stage in STAGES:
        assert spans[stage].trace_id == server.trace_id
    assert spans["authorize"].parent_span_id == server.span_id
    assert spans["forward"].parent_span_id == server.span_id
    assert spans["forward"].kind == Span.SPAN_KIND_CLIENT
    assert spans["identify"].parent_span_id == server.span_id

    sent = gate.upstream.last()["headers"]
    assert isinstance(sent, dict)
    version, trace_id, parent_id, flags = sent["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", CLIENT_TRACE_ID, "01")
    assert parent_id == spans["forward"].span_id.hex()

    assert attributes(server) == {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "idgate.route": "admin",
        "idgate.request_id": response.headers["X-Request-Id"],
        "url.path": "/admin/panel",
        "client.address": "127.0.0.1",
        "idgate.decision": "allow",
        "idgate.reason": "group",
    }
    exported = str(collector.spans)
    assert token not in exported
    assert "secret=1" not in exported
    assert collector.service_names == {"idgate-under-test"}
    assert collector.headers[0]["x-api-key"] == "collector-key"
    (line,) = (json.loads(r.getMessage()) for r in caplog.records if r.name == DECISION_LOGGER)
    assert line["trace_id"] == CLIENT_TRACE_ID


async def test_a_refused_request_is_traced_with_its_decision(
    start_gate: StartGate, collector: OtlpCollector
) -> None:
    """A denied request has its server span with the decision and reason, and no forward."""
    gate = await traced_gate(start_gate, collector, include_user=True)

    response = await gate.client.get("/admin", headers=gate.bearer("bob", groups=["staff"]))
    assert response.status == 403

    spans = by_name(
        await collector.wait_for(lambda spans: any(s.name == "GET admin" for s in spans))
    )
    assert "forward" not in spans
    server = attributes(spans["GET admin"])
    assert (server["idgate.decision"], server["http.response.status_code"]) == ("deny", 403)
    assert server["enduser.id"] == "bob"


async def test_an_untrusted_traceparent_starts_a_new_trace(
    start_gate: StartGate, collector: OtlpCollector
) -> None:
    """With `continue_incoming: trusted_proxies`, a direct client's `traceparent` is not
    continued: idgate starts a trace of its own, and the upstream sees idgate's."""
    gate = await traced_gate(
        start_gate, collector, continue_incoming=TraceContinuation.TRUSTED_PROXIES
    )

    response = await gate.client.get("/public", headers={"traceparent": CLIENT_TRACEPARENT})
    assert response.status == 200
    spans = by_name(
        await collector.wait_for(lambda spans: {"forward", "GET public"} <= {s.name for s in spans})
    )

    server = spans["GET public"]
    assert server.trace_id.hex() != CLIENT_TRACE_ID
    assert server.parent_span_id == b""
    sent = gate.upstream.last()["headers"]
    assert isinstance(sent, dict)
    assert sent["traceparent"].split("-")[1] == server.trace_id.hex()


async def test_a_reload_keeps_an_unchanged_tracer_and_flushes_a_replaced_one(
    collector: OtlpCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload that leaves `tracing` alone keeps its tracer; one that changes it builds a new
    tracer and retires the old one, whose queued spans are exported then, not lost."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # only a flush exports
    tracing = TracingSettings(otlp_endpoint=collector.url, service_name="before")
    settings = make_settings(NO_PROVIDER, NO_PROVIDER, tracing=tracing)
    async with ClientSession() as http:
        metrics = Metrics(CollectorRegistry())
        first = await build_runtime(settings, http=http, metrics=metrics)
        kept = await build_runtime(settings, http=http, metrics=metrics, previous=first)
        assert first.tracing is not None
        assert kept.tracing is first.tracing
        await retire_runtime(first, kept)

        changed = replace(settings, tracing=replace(tracing, service_name="after"))
        second = await build_runtime(changed, http=http, metrics=metrics, previous=kept)
        assert second.tracing is not kept.tracing
        trace = first.tracing.start({}, method="GET", from_trusted_proxy=False)
        trace.finish(
            status=200,
            route="public",
            path="/public",
            client_ip="192.0.2.1",
            request_id="r-1",
            decision=None,
            reason=None,
            user=None,
        )
        await retire_runtime(kept, second)
        assert [span.name for span in collector.spans] == ["GET public"]
        assert collector.service_names == {"before"}
        await retire_runtime(second, None)
