"""Which peers are trusted proxies, and which client address a trusted chain names."""

from __future__ import annotations

import ipaddress

from proxy.policy import trust
from proxy.policy.trust import TrustedProxies

TRUSTED = TrustedProxies((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")))


def test_forwarded_for_takes_the_rightmost_untrusted_address() -> None:
    """What a client prepends to X-Forwarded-For are ignored: the first untrusted hop counts."""
    chain = "6.6.6.6, 203.0.113.7, 10.1.2.3"
    assert TRUSTED.client_from_forwarded_for(chain, "10.0.0.1") == "203.0.113.7"


def test_forwarded_for_of_only_trusted_hops_falls_back_to_the_peer() -> None:
    """A chain of trusted proxies alone names no client; the peer address is kept."""
    assert TRUSTED.client_from_forwarded_for("10.1.1.1, 10.2.2.2", "10.0.0.1") == "10.0.0.1"


def test_forwarded_for_garbage_falls_back_to_the_peer() -> None:
    """A non-address in the chain is not logged as a client address."""
    assert TRUSTED.client_from_forwarded_for("not-an-ip", "10.0.0.1") == "10.0.0.1"


def test_trust_needs_a_configured_network() -> None:
    """With no trusted_proxies, nobody is trusted, not even loopback."""
    assert not TrustedProxies(()).trusts("127.0.0.1")
    assert TRUSTED.trusts("::1")
    assert not TRUSTED.trusts("unknown")


def test_trust_follows_a_reloaded_trusted_proxies_list() -> None:
    """Each trusted_proxies list (a reload builds a new one) answers from its own memo."""
    elsewhere = TrustedProxies((ipaddress.ip_network("192.168.0.0/16"),))

    assert TRUSTED.trusts("10.1.2.3")
    assert not elsewhere.trusts("10.1.2.3")
    assert TRUSTED.trusts("10.1.2.3")
    assert not TRUSTED.trusts("192.168.1.1")
    assert elsewhere.trusts("192.168.1.1")


def test_trust_answers_stay_right_past_the_memo_bound() -> None:
    """Many distinct peers (a scan) keep memory bounded and every answer right."""
    peers = [f"10.{n >> 8 & 255}.{n & 255}.1" for n in range(2 * trust._VERDICTS_MAX)]
    outsiders = [f"172.16.{n >> 8 & 255}.{n & 255}" for n in range(2 * trust._VERDICTS_MAX)]

    assert all(TRUSTED.trusts(peer) for peer in peers)
    assert not any(TRUSTED.trusts(peer) for peer in outsiders)
    assert len(TRUSTED._verdicts) <= trust._VERDICTS_MAX
