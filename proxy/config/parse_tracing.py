"""The `tracing` section: where OpenTelemetry spans go, and whose trace a request continues."""

from __future__ import annotations

import importlib.util
import math
from typing import Final

from proxy.config.addresses import http_url
from proxy.config.model import Secret, TraceContinuation, TracingSettings
from proxy.config.reader import Section, given
from proxy.config.values import InvalidValueError, boolean, choice, header_name, text

#: What `pip install 'idgate[tracing]'` brings: without them a configured `tracing` cannot run.
TRACING_MODULES: Final = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http")


def parse_tracing(top: Section) -> TracingSettings | None:
    if top.peek("tracing") is None:
        top.has("tracing")
        return None
    section = top.section("tracing")
    endpoint = section.get("otlp_endpoint", http_url, required=True)
    headers = section.section("headers")
    tracing = None
    if endpoint is not None:
        tracing = TracingSettings(
            otlp_endpoint=endpoint,
            **given(
                service_name=section.get("service_name", text),
                sample_ratio=section.get("sample_ratio", _ratio),
                headers=_headers(headers),
                continue_incoming=section.get("continue_incoming", choice(TraceContinuation)),
                include_user=section.get("include_user", boolean),
            ),
        )
    section.close()
    if not tracing_installed():
        section.issue(
            "set, but OpenTelemetry is not installed: install idgate with its tracing extra"
            " (pip install 'idgate[tracing]'), or remove this section"
        )
    return tracing


def tracing_installed() -> bool:
    try:
        return all(importlib.util.find_spec(name) is not None for name in TRACING_MODULES)
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _headers(section: Section) -> tuple[tuple[str, Secret], ...] | None:
    names = section.present_keys()
    for name in names:
        try:
            header_name(name)
        except InvalidValueError as problem:
            section.issue(str(problem), key=name)
    values = [(name, section.get(name, text)) for name in names]
    section.close()
    pairs = tuple((name, Secret(value)) for name, value in values if value is not None)
    return pairs or None


def _ratio(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidValueError("expected a number from 0 to 1")
    try:
        ratio = float(value)
    except ValueError:
        raise InvalidValueError("expected a number from 0 to 1") from None
    if not math.isfinite(ratio) or not 0.0 <= ratio <= 1.0:
        raise InvalidValueError("must be from 0 to 1 (1: every new trace is recorded)")
    return ratio
