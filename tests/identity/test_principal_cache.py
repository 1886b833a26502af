"""The verified-identity cache: bounded, least recently used out first, never past `expires_at`."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from proxy.identity.principal import NO_SIGN_IN, CredentialSource, Principal, SignIn
from proxy.identity.principal_cache import _SHARED_VALUES, PrincipalCache
from tests.support.issuer import FakeClock


def principal(
    user: str,
    *,
    expires_at: float,
    claims: dict[str, Any] | None = None,
    sign_in: SignIn = NO_SIGN_IN,
) -> Principal:
    return Principal(
        user=user,
        email=None,
        groups=frozenset(claims["groups"]) if claims else frozenset(),
        claims=MappingProxyType(claims or {}),
        source=CredentialSource.BEARER,
        expires_at=expires_at,
        sign_in=sign_in,
    )


def parsed_claims(subject: str) -> dict[str, Any]:
    """Claims as each token's JSON parse makes them: equal strings, each its own object."""
    parsed: dict[str, Any] = json.loads(
        json.dumps(
            {
                "iss": "https://login.example.com",
                "sub": subject,
                "groups": ["engineering", "sre"],
                "iat": 1_000,
                "realm_access": {"roles": ["admin"]},
            }
        )
    )
    return parsed


def test_an_identity_is_served_until_it_expires_and_then_dropped() -> None:
    """A stored identity is returned before its `expires_at`, and from then on never again."""
    clock = FakeClock(now=1_000.0)
    cache = PrincipalCache(10, clock)
    alice = cache.put("token-a", principal("alice", expires_at=1_060.0))

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
    alice = cache.put("token-a", principal("alice", expires_at=2_000.0))
    cache.put("token-b", principal("bob", expires_at=2_000.0))
    assert cache.get("token-a") is alice

    carol = cache.put("token-c", principal("carol", expires_at=2_000.0))

    assert len(cache) == 2
    assert cache.get("token-b") is None
    assert cache.get("token-a") is alice
    assert cache.get("token-c") is carol


def test_unknown_keys_are_misses() -> None:
    """A key never stored is simply absent."""
    assert PrincipalCache(1, FakeClock()).get("never-stored") is None


def test_a_stored_identity_equals_what_was_put_and_shares_equal_values_with_the_others() -> None:
    """The identity stored is equal to the one put, claims and all (lists stay lists, nested
    objects stay), while two users' equal claim names, strings and group sets are one object."""
    cache = PrincipalCache(10, FakeClock(now=1_000.0))
    alice, bob = (
        principal(name, expires_at=2_000.0, claims=parsed_claims(name)) for name in ("a", "b")
    )

    stored_alice = cache.put("token-a", alice)
    stored_bob = cache.put("token-b", bob)

    assert (stored_alice, stored_bob) == (alice, bob)
    assert stored_alice.claims == parsed_claims("a")
    assert stored_bob.groups is stored_alice.groups
    assert stored_bob.claims["iss"] is stored_alice.claims["iss"]
    assert stored_bob.claims["groups"][1] is stored_alice.claims["groups"][1]
    names = {id(name) for stored in (stored_alice, stored_bob) for name in stored.claims}
    assert len(names) == len(stored_alice.claims)
    assert cache.get("token-b") is stored_bob


def test_sign_ins_share_the_empty_one_and_equal_amr_sets() -> None:
    """An identity without sign-in claims holds the one empty SignIn; equal `amr` sets are one
    object, and the rest of a sign-in is kept."""
    cache = PrincipalCache(10, FakeClock(now=1_000.0))
    with_mfa = [
        SignIn(auth_time=900.0 + offset, acr="mfa", amr=frozenset(["pwd", "otp"]))
        for offset in (1, 2)
    ]

    none = cache.put("token-a", principal("a", expires_at=2_000.0, sign_in=SignIn()))
    first, second = (
        cache.put(f"token-{index}", principal("b", expires_at=2_000.0, sign_in=sign_in))
        for index, sign_in in enumerate(with_mfa)
    )

    assert none.sign_in is NO_SIGN_IN
    assert [first.sign_in, second.sign_in] == with_mfa
    assert first.sign_in.amr is second.sign_in.amr


def test_the_sharing_table_stays_bounded_and_shares_again_after_it_starts_over() -> None:
    """Unique values (`sub`) fill the sharing table up to its bound, then it starts over: equal
    values stored after that are shared again, and every entry still holds its own values."""
    cache = PrincipalCache(5_000, FakeClock(now=1_000.0))
    users = [f"user-{n}" for n in range(2_000)]

    stored = [
        cache.put(user, principal(user, expires_at=2_000.0, claims=parsed_claims(user)))
        for user in users
    ]

    assert len(cache._shared_values) <= _SHARED_VALUES < len(users)
    assert [entry.claims["sub"] for entry in stored] == users
    assert stored[-1].groups is stored[-2].groups
    assert stored[-1].claims["iss"] is stored[-2].claims["iss"]
