"""Unit tests for what accept believes about a request: header names, hosts, forwarding chains."""

from __future__ import annotations

import ipaddress

import pytest

from proxy.errors import BadRequest
from proxy.stages import accept
from proxy.stages.accept import (
    IDENTITY_HEADERS,
    client_from_forwarded_for,
    header_key,
    is_trusted,
    parse_forwarded,
    strip_host_port,
)

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


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


def test_forwarded_for_takes_the_rightmost_untrusted_address() -> None:
    """What a client prepends to X-Forwarded-For are ignored: the first untrusted hop counts."""
    chain = "6.6.6.6, 203.0.113.7, 10.1.2.3"
    assert client_from_forwarded_for(chain, "10.0.0.1", TRUSTED) == "203.0.113.7"


def test_forwarded_for_of_only_trusted_hops_falls_back_to_the_peer() -> None:
    """A chain of trusted proxies alone names no client; the peer address is kept."""
    assert client_from_forwarded_for("10.1.1.1, 10.2.2.2", "10.0.0.1", TRUSTED) == "10.0.0.1"


def test_forwarded_for_garbage_falls_back_to_the_peer() -> None:
    """A non-address in the chain is not logged as a client address."""
    assert client_from_forwarded_for("not-an-ip", "10.0.0.1", TRUSTED) == "10.0.0.1"


def test_trust_needs_a_configured_network() -> None:
    """With no trusted_proxies, nobody is trusted, not even loopback."""
    assert not is_trusted("127.0.0.1", ())
    assert is_trusted("::1", TRUSTED)
    assert not is_trusted("unknown", TRUSTED)


def test_forwarded_header_reads_the_nearest_element() -> None:
    """RFC 7239: the last element is the one the nearest proxy appended."""
    value = 'for=6.6.6.6;host=evil.test, for="203.0.113.7";proto=https;host=tools.example.com'
    assert parse_forwarded(value) == {
        "for": "203.0.113.7",
        "proto": "https",
        "host": "tools.example.com",
    }


def test_trust_follows_a_reloaded_trusted_proxies_list() -> None:
    """An answer remembered for one trusted_proxies list is never reused for another."""
    elsewhere = (ipaddress.ip_network("192.168.0.0/16"),)

    assert is_trusted("10.1.2.3", TRUSTED)
    assert not is_trusted("10.1.2.3", elsewhere)
    assert is_trusted("10.1.2.3", TRUSTED)
    assert not is_trusted("192.168.1.1", TRUSTED)
    assert is_trusted("192.168.1.1", elsewhere)


def test_trust_answers_stay_right_past_the_memo_bound() -> None:
    """Many distinct peers (a scan) keep memory bounded and every answer right."""
    peers = [f"10.{n >> 8 & 255}.{n & 255}.1" for n in range(2 * accept._VERDICTS_MAX)]
    outsiders = [f"172.16.{n >> 8 & 255}.{n & 255}" for n in range(2 * accept._VERDICTS_MAX)]

    assert all(is_trusted(peer, TRUSTED) for peer in peers)
    assert not any(is_trusted(peer, TRUSTED) for peer in outsiders)
    assert len(accept._verdicts) <= accept._VERDICTS_MAX
