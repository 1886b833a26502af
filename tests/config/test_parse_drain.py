"""The `drain` section: a pause before the listener closes, and a bounded grace for requests."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import DrainSettings
from tests.config.conftest import Issues


def test_drain_defaults_to_no_pause_and_thirty_seconds_of_grace(document: dict[str, Any]) -> None:
    """Without a `drain` section the listener closes at SIGTERM and requests get 30 seconds."""
    assert parse_settings(document, {}).drain == DrainSettings(
        delay_seconds=0.0, grace_seconds=30.0
    )


@pytest.mark.parametrize(
    ("delay", "grace", "expected"),
    [
        ("5s", "1m", DrainSettings(delay_seconds=5.0, grace_seconds=60.0)),
        (0, 10, DrainSettings(delay_seconds=0.0, grace_seconds=10.0)),
        ("0s", "500ms", DrainSettings(delay_seconds=0.0, grace_seconds=0.5)),
        ("5m", "1h", DrainSettings(delay_seconds=300.0, grace_seconds=3600.0)),
    ],
)
def test_drain_durations_are_read(
    document: dict[str, Any], delay: object, grace: object, expected: DrainSettings
) -> None:
    """`delay` may be zero; both take plain seconds or unit strings, up to their bounds."""
    document["drain"] = {"delay": delay, "grace": grace}

    assert parse_settings(document, {}).drain == expected


@pytest.mark.parametrize(
    ("drain", "problem"),
    [
        ({"grace": 0}, "drain.grace: must be a positive duration"),
        ({"grace": "2h"}, "drain.grace: must be at most 1h"),
        ({"delay": "6m"}, "drain.delay: must be at most 5m"),
        ({"delay": -1}, "drain.delay: must be a positive duration"),
        ({"delay": False}, "drain.delay: expected seconds or a duration"),
        ({"gracee": "1s"}, "drain.gracee: unknown key; did you mean grace?"),
    ],
)
def test_bad_drain_values_are_issues(
    document: dict[str, Any], issues: Issues, drain: dict[str, object], problem: str
) -> None:
    """A grace of nothing, an unbounded pause or grace, and unknown keys are refused."""
    document["drain"] = drain

    (issue,) = issues(document)
    assert issue.startswith(problem)
