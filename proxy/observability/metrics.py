"""Every Prometheus metric idgate exports, declared once.

With several workers, prometheus-client's multiprocess mode sums counters and histograms over
the workers; gauges say how to combine (`livemin`: the most pessimistic live worker, which is
what a staleness alert wants).

Label values come only from config names (route names) and fixed enums (Outcome, Reason,
TokenFailure, the method set below): never from anything a client sends, so a scanner cannot
blow up cardinality and no token can end up in a label.
"""

from __future__ import annotations

from typing import Final, overload

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from proxy.config.tls_context import Validity
from proxy.observability.buffers import CounterBuffer, HistogramBuffer, MetricBuffers

#: Routes that are not config routes still need a label: idgate's own endpoints and unmatched paths.
ROUTE_IDGATE: Final = "_idgate"
ROUTE_NONE: Final = "_none"

_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)

_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


#: A `_created` sample per counter and histogram child doubles the series a scrape stores and says
#: nothing a dashboard uses (Prometheus's own exporters leave them out; with several workers
#: prometheus-client's multiprocess collector never writes them). Process-wide by nature: every
#: registry idgate serves is one of Metrics'.
disable_created_metrics()  # type: ignore[no-untyped-call]


def method_label(method: str) -> str:
    return method if method in _KNOWN_METHODS else "OTHER"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


class Metrics:
    """The metric objects, bound to one registry (tests give each app its own).

    The request path updates its metrics through `child()` (and `token_validation_duration`),
    which buffer in plain Python (proxy/observability/buffers.py); rarer events update the
    prometheus-client objects directly.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        # First, so that a collect of the registry flushes before it reads any metric.
        self.buffers = MetricBuffers(registry)
        self._children: dict[tuple[int, tuple[str, ...]], CounterBuffer | HistogramBuffer] = {}
        self.requests = Counter(
            "idgate_requests",
            "Requests handled, by route, method and status class.",
            ["route", "method", "status_class"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "idgate_request_duration_seconds",
            "Time from request received to response started.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "idgate_auth_decisions",
            "Authorization decisions, by route, decision and reason.",
            ["route", "decision", "reason"],
            registry=registry,
        )
        self.token_validations = Counter(
            "idgate_token_validations",
            "Bearer token checks, by result (valid, invalid, cached), reason and issuer (empty"
            " before a token's issuer is known).",
            ["result", "reason", "issuer"],
            registry=registry,
        )
        self.token_validation_duration = self.buffers.histogram(
            Histogram(
                "idgate_token_validation_duration_seconds",
                "Time to check one bearer token (cache hits included).",
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            )
        )
        self.upstream_duration = Histogram(
            "idgate_upstream_duration_seconds",
            "Time from forwarding to upstream response headers, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.forwarded_without_decision = Counter(
            "idgate_forwarded_without_decision",
            "Forwards attempted without an allow decision (refused): must stay zero.",
            registry=registry,
        )
        self.token_introspections = Counter(
            "idgate_token_introspections",
            "Calls to an issuer's introspection endpoint (RFC 7662), by answer: active, "
            "inactive, or failure (no usable answer: the token was refused with 503).",
            ["result", "issuer"],
            registry=registry,
        )
        self.forward_auth_untrusted_peers = Counter(
            "idgate_forward_auth_untrusted_peers",
            "Forward-auth checks refused (403) because a peer outside trusted_proxies sent"
            " original-request headers: a gateway missing from trusted_proxies.",
            registry=registry,
        )
        self.jwks_refreshes = Counter(
            "idgate_jwks_refreshes",
            "Fetches of an issuer's signing keys, by result.",
            ["result", "issuer"],
            registry=registry,
        )
        self.jwks_keys = Gauge(
            "idgate_jwks_keys",
            "Signing keys currently loaded, by issuer.",
            ["issuer"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.jwks_last_success = Gauge(
            "idgate_jwks_last_success_timestamp_seconds",
            "Unix time of an issuer's last successful key fetch.",
            ["issuer"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.logins = Counter(
            "idgate_logins",
            "Browser sign-ins completed, by result.",
            ["result"],
            registry=registry,
        )
        self.session_refreshes = Counter(
            "idgate_session_refreshes",
            "Session token refreshes at the provider, by result.",
            ["result"],
            registry=registry,
        )
        self.logouts = Counter(
            "idgate_logouts",
            "Sessions ended, by result.",
            ["result"],
            registry=registry,
        )
        self.token_revocations = Counter(
            "idgate_token_revocations",
            "Session tokens sent to the provider's revocation endpoint at sign-out, by result.",
            ["result"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "idgate_rate_limited",
            "Requests answered 429 because their client passed a rate limit, by limit.",
            ["limit"],
            registry=registry,
        )
        self.connections_open = Gauge(
            "idgate_connections_open",
            "Client connections open now (summed over workers).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections_refused = Counter(
            "idgate_connections_refused",
            "Client connections closed at once because server.max_connections were open.",
            registry=registry,
        )
        self.request_head_timeouts = Counter(
            "idgate_request_head_timeouts",
            "Client connections closed because their first request head was not complete within"
            " server.request_head_timeout.",
            registry=registry,
        )
        self.config_reloads = Counter(
            "idgate_config_reloads",
            "Configuration reloads, by result.",
            ["result"],
            registry=registry,
        )
        self.config_last_reload_success = Gauge(
            "idgate_config_last_reload_success_timestamp_seconds",
            "Unix time the running configuration was loaded.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.certificate_expiry = Gauge(
            "idgate_certificate_expiry_timestamp_seconds",
            "Unix time the soonest-expiring certificate in use expires, by role: listener,"
            " client_ca, upstream_ca, upstream_client.",
            ["role"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.certificate_issued = Gauge(
            "idgate_certificate_issued_timestamp_seconds",
            "Unix time (notBefore) the certificate of idgate_certificate_expiry_timestamp_seconds"
            " became valid, by role: with it, an alert knows the certificate's lifetime.",
            ["role"],
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.certificate_reloads = Counter(
            "idgate_certificate_reloads",
            "Certificate files re-read after a change on disk, by role (listener, upstream) and"
            " result; a failure keeps the previous certificates serving.",
            ["role", "result"],
            registry=registry,
        )
        self.upstream_identity_mismatches = Counter(
            "idgate_upstream_identity_mismatches",
            "Upstream connections closed because the upstream's certificate did not carry the"
            " route's upstream_tls.spiffe_id (answered 502), by route.",
            ["route"],
            registry=registry,
        )

    def reloaded(self, role: str, *, ok: bool) -> None:
        """A certificate reload (proxy/certfiles), counted."""
        self.certificate_reloads.labels(role=role, result="success" if ok else "failure").inc()

    def validity(self, soonest: Validity) -> None:
        self.certificate_expiry.labels(role=soonest.role).set(soonest.not_after)
        self.certificate_issued.labels(role=soonest.role).set(soonest.not_before)

    @overload
    def child(self, metric: Counter, *values: str) -> CounterBuffer: ...

    @overload
    def child(self, metric: Histogram, *values: str) -> HistogramBuffer: ...

    def child(self, metric: Counter | Histogram, *values: str) -> CounterBuffer | HistogramBuffer:
        """The buffered `metric.labels(*values)`, remembered: the request path asks for the same
        few all the time. Values come from config names and fixed enums, so the memo stays as
        small as the label space."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            target = metric.labels(*values)
            if isinstance(target, Counter):
                found = self.buffers.counter(target)
            else:
                found = self.buffers.histogram(target)
            self._children[key] = found
        return found
