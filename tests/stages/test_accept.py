"""Unit tests for what accept believes about a request: header names, hosts, forwarding chains."""

from __future__ import annotations

import pytest

from proxy.errors import BadRequest
from proxy.stages.accept import parse_forwarded, strip_host_port
from proxy.stages.header_names import IDENTITY_HEADERS, header_key


@pytest.mark.parametrize(
    "name",
    ["X-Authenticated-User", "x_authenticated_user", "X_AUTHENTICATED-USER", "x-AUTH-request_user"],
)
def test_identity_header_names_match_any_case_and_underscore(name: str) -> None:
    """A spoofed identity header is recognised whatever its case and whether it uses _ or -."""
    assert header_key(name) in IDENTITY_HEADERS


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8443", "example.com"),
        ("[::1]:8080", "[::1]"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_host_is_lower_cased_without_port(host: str, expected: str) -> None:
    """Routes match on the host alone, lower case, whatever port the client used."""
    assert strip_host_port(host) == expected


@pytest.mark.parametrize(
    "host", ["exa mple.com", "a.com/evil", "a.com@b.com", "a.com:99999999", ""]
)
def test_malformed_host_is_a_bad_request(host: str) -> None:
    """A Host header that is not a host[:port] is refused, not guessed at."""
    with pytest.raises(BadRequest):
        strip_host_port(host)


def test_forwarded_header_reads_the_nearest_element() -> None:
    """RFC 7239: the last element is the one the nearest proxy appended."""
    value = 'for=6.6.6.6;host=evil.test, for="203.0.113.7";proto=https;host=tools.example.com'
    assert parse_forwarded(value) == {
        "for": "203.0.113.7",
        "proto": "https",
        "host": "tools.example.com",
    }
