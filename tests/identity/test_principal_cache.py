"""The verified-identity cache: bounded, least recently used out first, never past `expires_at`."""

from __future__ import annotations

from types import MappingProxyType

from proxy.identity.principal import CredentialSource, Principal
from proxy.identity.principal_cache import PrincipalCache
from tests.support.issuer import FakeClock


def principal(user: str, *, expires_at: float) -> Principal:
    return Principal(
        user=user,
        email=None,
        groups=frozenset(),
        claims=MappingProxyType({}),
        source=CredentialSource.BEARER,
        expires_at=expires_at,
    )


def test_an_identity_is_served_until_it_expires_and_then_dropped() -> None:
    """A stored identity is returned before its `expires_at`, and from then on never again."""
    clock = FakeClock(now=1_000.0)
    cache = PrincipalCache(10, clock)
    alice = principal("alice", expires_at=1_060.0)
    cache.put("token-a", alice)

    clock.now = 1_059.9
    assert cache.get("token-a") is alice

    clock.now = 1_060.0
    assert cache.get("token-a") is None
    assert len(cache) == 0


def test_an_identity_already_expired_is_not_stored() -> None:
    """Putting an identity whose `expires_at` has passed leaves the cache as it was."""
    cache = PrincipalCache(10, FakeClock(now=1_000.0))

    cache.put("token-a", principal("alice", expires_at=1_000.0))

    assert len(cache) == 0
    assert cache.get("token-a") is None


def test_when_full_the_least_recently_used_identity_goes_first() -> None:
    """The bound holds; an identity read recently outlives one stored later but never read."""
    cache = PrincipalCache(2, FakeClock(now=1_000.0))
    alice, bob, carol = (principal(name, expires_at=2_000.0) for name in ("alice", "bob", "carol"))
    cache.put("token-a", alice)
    cache.put("token-b", bob)
    assert cache.get("token-a") is alice

    cache.put("token-c", carol)

    assert len(cache) == 2
    assert cache.get("token-b") is None
    assert cache.get("token-a") is alice
    assert cache.get("token-c") is carol


def test_unknown_keys_are_misses() -> None:
    """A key never stored is simply absent."""
    assert PrincipalCache(1, FakeClock()).get("never-stored") is None
