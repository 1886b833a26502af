"""The `server` and `upstream` sections: timeouts and size limits, each issue at its key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from proxy.config.load import load_settings, parse_settings
from proxy.config.model import ServerSettings, UpstreamSettings

Issues = Callable[..., list[str]]

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "idgate.example.yaml"
EXAMPLE_ENV = {
    "IDGATE_CLIENT_SECRET": "client-secret",
    "IDGATE_SESSION_SECRET": "session-secret-0123456789abcdef0123456789",
}


def test_absent_sections_take_the_nginx_like_defaults_from_the_model(
    document: dict[str, Any],
) -> None:
    """Without `server` and `upstream`: 60 s head, 75 s keep-alive, 60 s idle bodies both ways."""
    settings = parse_settings(document, {})

    assert settings.server == ServerSettings()
    assert settings.upstream == UpstreamSettings()
    assert settings.server.request_head_timeout_seconds == 60
    assert settings.server.keepalive_timeout_seconds == 75
    assert settings.server.body_idle_timeout_seconds == 60
    assert settings.upstream.body_idle_timeout_seconds == 60


def test_the_example_config_spells_out_the_defaults() -> None:
    """config/idgate.example.yaml writes every limit with its default value."""
    settings = load_settings(EXAMPLE, EXAMPLE_ENV)

    assert settings.server == ServerSettings()
    assert settings.upstream == UpstreamSettings()


def test_every_key_is_read(document: dict[str, Any]) -> None:
    """Durations take units or seconds (fractions too); sizes and counts are whole numbers."""
    document["server"] = {
        "request_head_timeout": "10s",
        "keepalive_timeout": 20.5,
        "body_idle_timeout": "500ms",
        "max_connections": 100,
        "max_request_head_bytes": "32768",
        "tunnel_recheck_interval": "2s",
    }
    document["upstream"] = {
        "body_idle_timeout": "5m",
        "max_response_head_bytes": 8192,
        "max_response_headers": 50,
    }

    settings = parse_settings(document, {})

    assert settings.server == ServerSettings(
        request_head_timeout_seconds=10,
        keepalive_timeout_seconds=20.5,
        body_idle_timeout_seconds=0.5,
        max_connections=100,
        max_request_head_bytes=32768,
        tunnel_recheck_seconds=2,
    )
    assert settings.upstream == UpstreamSettings(
        body_idle_timeout_seconds=300, max_response_head_bytes=8192, max_response_headers=50
    )


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("server.request_head_timeout", 0, "must be a positive duration"),
        ("server.keepalive_timeout", "forever", "expected seconds or a duration"),
        ("server.body_idle_timeout", "2d", "must be at most 24h"),
        ("server.max_connections", 0, "must be between 1 and 1000000"),
        ("server.tunnel_recheck_interval", 0, "must be a positive duration"),
        ("server.max_request_head_bytes", 1024, "must be between 4096 and 1048576"),
        ("server.max_request_head_bytes", "64KiB", "expected a whole number"),
        ("server.keep_alive_timeout", 5, "unknown key; did you mean keepalive_timeout?"),
        ("upstream.body_idle_timeout", -1, "must be a positive duration"),
        ("upstream.max_response_head_bytes", 10**9, "must be between 4096 and 1048576"),
        ("upstream.max_response_headers", 5, "must be between 10 and 1000"),
        ("upstream.timeout", "30s", "unknown key"),
    ],
)
def test_each_problem_is_named_by_its_key_path(
    document: dict[str, Any], issues: Issues, where: str, value: object, expected: str
) -> None:
    """A bad limit is reported at `section.key`, with what was expected."""
    section, key = where.split(".")
    document[section] = {key: value}

    [issue] = issues(document)
    assert issue.startswith(f"{where}: {expected}"), issue


def test_a_head_timeout_longer_than_the_keepalive_timeout_is_an_issue(
    document: dict[str, Any], issues: Issues
) -> None:
    """The keep-alive timer runs from a connection's opening too, so it would cut first."""
    document["server"] = {"request_head_timeout": "90s", "keepalive_timeout": "75s"}

    [issue] = issues(document)
    assert issue == (
        "server.request_head_timeout: must not be longer than keepalive_timeout, which also"
        " bounds a new connection"
    )


def test_a_url_as_the_top_level_upstream_says_where_it_belongs(
    document: dict[str, Any], issues: Issues
) -> None:
    """`upstream: http://...` at the top is a route's key written in the wrong place."""
    document["upstream"] = "http://127.0.0.1:8080"

    [issue] = issues(document)
    assert issue == (
        "upstream: the top-level `upstream` is a mapping of limits for every upstream; a route's"
        " upstream URL goes under routes[]"
    )
