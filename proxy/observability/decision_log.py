"""The decision log's writer: one JSON line per request (proxy/stages/decision_line.py makes
it), written without blocking the event loop.

Under `idgate serve` decision lines skip the logging module (a LogRecord per request costs more
than the line itself): they gather in batches, handed every 10 ms to a thread that writes
them to stderr, next to the other log records, which take the ordinary logging path through a
queue too.
Without the writer (tests, embedding) they go to the `idgate.decision` logger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import queue
import sys
import threading
from typing import Any, Final, TextIO

from proxy.observability.log_time import iso_utc

DECISION_LOGGER: Final = "idgate.decision"
#: A record about one request carries these as attributes (logging's `extra`); its line gets them.
REQUEST_FIELDS: Final = ("request_id", "client_ip", "method", "path")

#: Built once: json.dumps with any option builds a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), default=str)

_logger = logging.getLogger(DECISION_LOGGER)


class _LineWriter(threading.Thread):
    """Writes decision lines to a stream from its own thread, a batch per write.

    Lines gather on the event loop's side and are handed over every `_FLUSH_SECONDS` (or per
    `_BATCH_LINES`): waking a thread for every line cost more than the rest of the decision
    log, and the GIL handovers it forced were the proxy's slowest requests (p99 17 -> 10 ms).
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(name="idgate-decision-log", daemon=True)
        self._stream = stream
        self._batches: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._pending: list[str] = []
        self._flush_handle: asyncio.Handle | None = None

    def add(self, line: str) -> None:
        """Queue a line; called on the event loop's thread (or, without a loop, written soon)."""
        pending = self._pending
        pending.append(line)
        if len(pending) >= _BATCH_LINES:
            self.flush()
        elif self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush_handle = loop.call_later(_FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._pending:
            self._batches.put(self._pending)
            self._pending = []

    def run(self) -> None:
        while (batch := self._batches.get()) is not None:
            self._stream.write("\n".join(batch) + "\n")
            self._stream.flush()

    def stop(self) -> None:
        """Write what is pending and end the thread (once the event loop is done with it)."""
        self.flush()
        self._batches.put(None)
        self.join()


_BATCH_LINES: Final = 256
#: Long enough to gather a worker's lines into one handover under load, short enough that a line
#: still reads as written when its response arrives (per turn of the loop was measured 10% dearer).
_FLUSH_SECONDS: Final = 0.01
_writer: _LineWriter | None = None


def log_decision(line: str) -> None:
    if _writer is not None:
        _writer.add(line)
    elif _logger.isEnabledFor(logging.INFO):
        _logger.info(line)


class LogWriters:
    """The threads that write idgate's log to stderr; `stop()` flushes and ends them."""

    def __init__(self, level: str) -> None:
        global _writer  # noqa: PLW0603 (one process, one stderr, one writer)
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(_PlainFormatter())
        self._listener = logging.handlers.QueueListener(
            records, stream, respect_handler_level=False
        )
        root = logging.getLogger()
        root.handlers[:] = [logging.handlers.QueueHandler(records)]
        root.setLevel(level)
        self._listener.start()
        self._decisions = _LineWriter(sys.stderr)
        self._decisions.start()
        _writer = self._decisions

    def stop(self) -> None:
        global _writer  # noqa: PLW0603
        _writer = None
        self._decisions.stop()
        self._listener.stop()


def start_log_writer(level: str) -> LogWriters:
    """Route idgate's log through queues to threads that write stderr, so a slow log pipe never
    stalls request handling. The caller stops the returned writers at exit."""
    return LogWriters(level)


class _PlainFormatter(logging.Formatter):
    """Decision lines are JSON already; other records get a JSON envelope (one format to parse)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == DECISION_LOGGER:
            return record.getMessage()
        entry: dict[str, Any] = {
            "time": iso_utc(record.created),
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)
