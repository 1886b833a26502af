"""The `server` and `upstream` sections: timeouts and size limits on both sides of the proxy."""

from __future__ import annotations

from typing import Final

from proxy.config.model import ServerSettings, UpstreamSettings
from proxy.config.reader import Section, given
from proxy.config.values import duration_at_most, int_between

#: aiohttp refuses a head over 100 fields of 32 KiB each before idgate sees it, so a total bound
#: above a few MiB would never apply; one below a few KiB would refuse ordinary browsers.
_HEAD_BYTES: Final = int_between(4096, 1024 * 1024)
_RESPONSE_HEADERS: Final = int_between(10, 1000)
_CONNECTIONS: Final = int_between(1, 1_000_000)
#: A timeout of more than a day is no bound at all: say so rather than accept it.
_LONGEST: Final = 86400.0
_timeout = duration_at_most(_LONGEST)


def parse_server(section: Section) -> ServerSettings:
    server = ServerSettings(
        **given(
            request_head_timeout_seconds=section.get("request_head_timeout", _timeout),
            keepalive_timeout_seconds=section.get("keepalive_timeout", _timeout),
            body_idle_timeout_seconds=section.get("body_idle_timeout", _timeout),
            max_connections=section.get("max_connections", _CONNECTIONS),
            max_request_head_bytes=section.get("max_request_head_bytes", _HEAD_BYTES),
            tunnel_recheck_seconds=section.get("tunnel_recheck_interval", _timeout),
        )
    )
    section.close()
    if server.request_head_timeout_seconds > server.keepalive_timeout_seconds:
        # aiohttp's keep-alive timer also runs from a connection's opening, so a longer head
        # timeout would never be reached.
        section.issue(
            "must not be longer than keepalive_timeout, which also bounds a new connection",
            key="request_head_timeout",
        )
    return server


def parse_upstream(top: Section) -> UpstreamSettings:
    if isinstance(top.peek("upstream"), str):
        top.has("upstream")
        top.issue(
            "the top-level `upstream` is a mapping of limits for every upstream; a route's"
            " upstream URL goes under routes[]",
            key="upstream",
        )
        return UpstreamSettings()
    section = top.section("upstream")
    upstream = UpstreamSettings(
        **given(
            body_idle_timeout_seconds=section.get("body_idle_timeout", _timeout),
            max_response_head_bytes=section.get("max_response_head_bytes", _HEAD_BYTES),
            max_response_headers=section.get("max_response_headers", _RESPONSE_HEADERS),
        )
    )
    section.close()
    return upstream
