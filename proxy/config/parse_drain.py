"""The `drain` section: how long a stopping idgate keeps taking and finishing requests."""

from __future__ import annotations

from typing import Final

from proxy.config.model import DrainSettings
from proxy.config.reader import Section, given
from proxy.config.values import duration_at_most

#: Upper bounds, so a typo cannot keep a stopping process (and a Kubernetes pod) around for days.
MAX_DELAY_SECONDS: Final = 300.0
MAX_GRACE_SECONDS: Final = 3600.0
_longest_delay = duration_at_most(MAX_DELAY_SECONDS)
_grace = duration_at_most(MAX_GRACE_SECONDS)


def parse_drain(section: Section) -> DrainSettings:
    drain = DrainSettings(
        **given(
            delay_seconds=section.get("delay", _delay),
            grace_seconds=section.get("grace", _grace),
        )
    )
    section.close()
    return drain


def _delay(value: object) -> float:
    # Zero (the default) is a valid delay: no pause at all.
    if not isinstance(value, bool) and value in (0, "0", "0s"):
        return 0.0
    return _longest_delay(value)
