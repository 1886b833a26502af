"""The decision log: one JSON line per request, written without blocking the event loop.

Fields are chosen so that no token, cookie or secret can appear: the query string (which may
carry a token or a code) is never logged, and the user is the configured user claim only.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any, Final

from proxy.keys import RequestContext

DECISION_LOGGER: Final = "idgate.decision"

_logger = logging.getLogger(DECISION_LOGGER)


def decision_record(
    ctx: RequestContext | None, *, status: int, route: str, latency: float, reason: str | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ts": round(time.time(), 3),
        "status": status,
        "route": route,
        "latency_ms": round(latency * 1000, 3),
    }
    if ctx is not None:
        principal = ctx.principal
        record |= {
            "request_id": ctx.request_id,
            "client_ip": ctx.client_ip,
            "method": ctx.method,
            "host": ctx.host,
            "path": ctx.path,
            "user": principal.user if principal else None,
            "source": principal.source.value if principal else None,
        }
        if ctx.decision is not None:
            record["decision"] = ctx.decision.outcome.value
            reason = ctx.decision.reason.value
        if ctx.token_failure is not None:
            record["token_failure"] = ctx.token_failure.value
    record["reason"] = reason
    return record


def log_decision(record: dict[str, Any]) -> None:
    if _logger.isEnabledFor(logging.INFO):
        _logger.info(json.dumps(record, separators=(",", ":"), default=str))


def start_log_writer(level: str) -> logging.handlers.QueueListener:
    """Route every idgate log record through a queue to a thread that writes stderr, so a slow
    log pipe never stalls request handling. The caller stops the returned listener at exit."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(_PlainFormatter())
    listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level)
    listener.start()
    return listener


class _PlainFormatter(logging.Formatter):
    """Decision lines are JSON already; other records get a JSON envelope (one format to parse)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == DECISION_LOGGER:
            return record.getMessage()
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)
