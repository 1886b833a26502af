"""Token buckets per client: a burst, then an even rate; IPv6 counted per /64; bounded memory."""

from __future__ import annotations

import pytest

from proxy.policy.rate_limits import TokenBuckets, client_key, retry_after_header
from tests.support.issuer import FakeClock


def test_a_client_gets_its_burst_then_waits_for_the_refill() -> None:
    """`per_minute` requests pass at once; the next one waits 60/per_minute seconds."""
    clock = FakeClock(now=1000.0)
    buckets = TokenBuckets(6, clock=clock)
    assert [buckets.take("203.0.113.9") for _ in range(6)] == [0.0] * 6
    assert buckets.take("203.0.113.9") == pytest.approx(10.0)
    clock.advance(10.0)
    assert buckets.take("203.0.113.9") == 0.0
    assert buckets.take("203.0.113.9") > 0.0


def test_one_client_using_its_limit_leaves_others_alone() -> None:
    """Buckets are per client address."""
    buckets = TokenBuckets(1, clock=FakeClock(now=0.0))
    assert buckets.take("203.0.113.9") == 0.0
    assert buckets.take("203.0.113.9") > 0.0
    assert buckets.take("198.51.100.1") == 0.0


def test_a_refused_attempt_does_not_push_the_wait_further() -> None:
    """Knocking while limited costs nothing more: the wait counts down regardless."""
    clock = FakeClock(now=0.0)
    buckets = TokenBuckets(60, clock=clock)
    for _ in range(60):
        buckets.take("203.0.113.9")
    first = buckets.take("203.0.113.9")
    clock.advance(0.5)
    assert buckets.take("203.0.113.9") == pytest.approx(first - 0.5)


def test_ipv6_addresses_of_one_64_share_a_bucket() -> None:
    """Rotating through the addresses of one /64 buys nothing."""
    buckets = TokenBuckets(1, clock=FakeClock(now=0.0))
    assert buckets.take("2001:db8:1:2::1") == 0.0
    assert buckets.take("2001:db8:1:2:ffff::9") > 0.0
    assert buckets.take("2001:db8:1:3::1") == 0.0


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:db8::1", "2001:db8::/64"),
        ("unknown", "unknown"),
    ],
)
def test_client_keys(address: str, key: str) -> None:
    """IPv4 (also mapped into IPv6) is counted per address, IPv6 per /64."""
    assert client_key(address) == key


def test_memory_stays_bounded_under_many_clients() -> None:
    """Past max_clients the client seen longest ago is forgotten."""
    buckets = TokenBuckets(1, max_clients=100, clock=FakeClock(now=0.0))
    for n in range(1000):
        buckets.take(f"10.0.{n >> 8}.{n & 255}")
    assert len(buckets._buckets) == 100


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.9, "60")])
def test_retry_after_is_a_whole_number_of_seconds(wait: float, header: str) -> None:
    """RFC 9110 10.2.3 delay-seconds: rounded up, never 0."""
    assert retry_after_header(wait) == header
