"""OpenTelemetry tracing, only when `tracing` is configured (the optional `idgate[tracing]` extra).

Each request idgate routes gets a server span, named for its method and route, with children for
its stages: `identify` (credentials to a user), `authorize` (route, identity, policy) and
`forward`, a client span whose id the upstream receives in a new W3C `traceparent`, so the
upstream's own spans hang under idgate's. An incoming `traceparent` is continued as
`tracing.continue_incoming` says (THREAT_MODEL.md: a client can choose its trace id and whether
it is sampled); otherwise a trace starts here, sampled at `tracing.sample_ratio`.

What spans carry is what the decision log carries (stages/decision_line.py): method, normalised
path (never the query), route, decision and reason, status, client address and request id, and the
user only with `tracing.include_user`; never a header value, token or cookie.

Spans are exported by the SDK's BatchSpanProcessor from its own thread (at most 2048 queued,
dropped beyond, so a dead collector costs bounded memory and never a request); `shutdown()`
exports what is left. This is the only module that imports OpenTelemetry, and only when tracing
is configured: without the extra idgate runs as before, and without `tracing` a request pays one
`is None` test per stage.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from proxy.config.model import TraceContinuation, TracingSettings

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_INSTRUMENTATION: Final = "idgate"


class Tracing:
    """One runtime's tracer and exporter; `shutdown()` flushes and stops them (blocking)."""

    def __init__(self, settings: TracingSettings) -> None:
        # Imported here: the extra is optional, and the config loader has checked it is present.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
        from opentelemetry.sdk.trace.sampling import (  # noqa: PLC0415
            ParentBased,
            TraceIdRatioBased,
        )
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        self.settings = settings
        self._provider: TracerProvider = TracerProvider(
            # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES (deployment.environment, ...).
            resource=Resource.create({SERVICE_NAME: settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
            # retire_runtime shuts it down (at exit, and when a reload replaces it); an atexit
            # hook per provider would keep every replaced one alive.
            shutdown_on_exit=False,
        )
        exporter = OTLPSpanExporter(
            endpoint=settings.otlp_endpoint,
            headers={name: value.reveal() for name, value in settings.headers},
        )
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer: Tracer = self._provider.get_tracer(_INSTRUMENTATION)
        self._propagator: TraceContextTextMapPropagator = TraceContextTextMapPropagator()

    def start(
        self, headers: Mapping[str, str], *, method: str, from_trusted_proxy: bool
    ) -> RequestTrace:
        """The trace of a request that arrived with `headers`, its server span started."""
        from opentelemetry.context import Context  # noqa: PLC0415
        from opentelemetry.trace import SpanKind  # noqa: PLC0415

        continuation = self.settings.continue_incoming
        if continuation is TraceContinuation.ANY or (
            continuation is TraceContinuation.TRUSTED_PROXIES and from_trusted_proxy
        ):
            parent = self._propagator.extract(headers)
        else:
            parent = Context()
        span = self._tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        return RequestTrace(self, span, method)

    def shutdown(self) -> None:
        """Export the spans still queued and stop the exporter's thread."""
        self._provider.shutdown()


class RequestTrace:
    """One request's server span and the way to hang its stages' spans under it."""

    __slots__ = ("_context", "_method", "_span", "_tracing")

    def __init__(self, tracing: Tracing, span: Span, method: str) -> None:
        from opentelemetry.trace import set_span_in_context  # noqa: PLC0415

        self._tracing = tracing
        self._span = span
        self._method = method
        self._context: Context = set_span_in_context(span)

    @property
    def trace_id(self) -> str:
        """32 hex digits, as `traceparent` and every tracing backend write it."""
        return f"{self._span.get_span_context().trace_id:032x}"

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """A child span around one stage of the request."""
        span = self._tracing._tracer.start_span(name, context=self._context)
        try:
            yield
        finally:
            span.end()

    @contextmanager
    def forwarding(self, headers: MutableMapping[str, str]) -> Iterator[None]:
        """A client span around the upstream exchange; `headers` (sent upstream) get its
        `traceparent` (and the continued `tracestate`), replacing any the client sent."""
        from opentelemetry.trace import SpanKind, set_span_in_context  # noqa: PLC0415

        tracing = self._tracing
        span = tracing._tracer.start_span("forward", context=self._context, kind=SpanKind.CLIENT)
        tracing._propagator.inject(headers, context=set_span_in_context(span))
        try:
            yield
        finally:
            span.end()

    def finish(
        self,
        *,
        status: int,
        route: str,
        path: str | None,
        client_ip: str | None,
        request_id: str,
        decision: str | None,
        reason: str | None,
        user: str | None,
    ) -> None:
        """End the server span with what the request came to (attribute names from the
        OpenTelemetry HTTP semantic conventions where they have one)."""
        from opentelemetry.trace import StatusCode  # noqa: PLC0415

        span = self._span
        span.update_name(f"{self._method} {route}")
        attributes: dict[str, str | int] = {
            "http.request.method": self._method,
            "http.response.status_code": status,
            "idgate.route": route,
            "idgate.request_id": request_id,
        }
        optional = {
            "url.path": path,
            "client.address": client_ip,
            "idgate.decision": decision,
            "idgate.reason": reason,
            "enduser.id": user if self._tracing.settings.include_user else None,
        }
        attributes.update({name: value for name, value in optional.items() if value is not None})
        span.set_attributes(attributes)
        # Semantic conventions: a server span is an error for a 5xx only; a 4xx is the client's.
        if status >= 500:
            span.set_status(StatusCode.ERROR)
        span.end()
