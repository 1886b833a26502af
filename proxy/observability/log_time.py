"""The `time` of every log line: ISO 8601 in UTC with milliseconds, `2026-12-02T18:30:00.123Z`,
the form log pipelines (Loki, Elasticsearch, Cloud Logging) parse without being told a format."""

from __future__ import annotations

import time

#: The last second formatted and its text, as one tuple: the log writer's thread and the event
#: loop both call iso_utc, and each reads and replaces the pair whole.
_last: tuple[int, str] = (-1, "")


def iso_utc(now: float) -> str:
    """`now` (Unix seconds) as ISO 8601 UTC; the date and time of day are formatted once per
    second, since every request writes a line."""
    global _last  # noqa: PLW0603 (a one-entry cache, the same for every caller)
    second = int(now)
    cached_second, prefix = _last
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last = (second, prefix)
    return f"{prefix}.{int((now - second) * 1000):03d}Z"
