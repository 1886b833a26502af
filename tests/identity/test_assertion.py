"""The signed identity assertion: verifiable with the published keys, derived, rotated, reused."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import time
from types import MappingProxyType
from typing import Any

import jwt
import pytest

from proxy.config.model import Policy, Route, Secret
from proxy.identity.assertion import AssertionSigner
from proxy.identity.principal import CredentialSource, Principal

ISSUER = "https://idgate.example.com"
#: Whole seconds near the real time, because pyjwt checks `exp` against the real clock.
NOW = float(int(time.time()))
#: Tests run minutes after this module is imported (NOW) in a full suite: pyjwt's time checks
#: get that much slack, so they never depend on how long the suite took to reach them.
SLACK = 3600
GRAFANA = Route(name="grafana", upstream="http://grafana:3000", policy=Policy(public=True))
JENKINS = Route(name="jenkins", upstream="http://jenkins:8080", policy=Policy(public=True))
SECRET = Secret("a-session-secret-of-enough-entropy-0123456789")
OLD_SECRET = Secret("the-previous-session-secret-9876543210-abcdef")


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def principal(
    *,
    expires_at: float = NOW + 3600,
    email: str | None = "alice@example.com",
    issuer: str | None = "oidc",
) -> Principal:
    return Principal(
        user="alice",
        email=email,
        groups=frozenset({"dev", "admins"}),
        claims=MappingProxyType({}),
        source=CredentialSource.SESSION,
        expires_at=expires_at,
        issuer=issuer,
    )


def verify(token: str, signer: AssertionSigner, route: Route) -> dict[str, Any]:
    """What an upstream does: pick the key by kid from /oauth2/jwks and check everything."""
    keys = jwt.PyJWKSet.from_dict(signer.jwks())
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [key for key in keys.keys if key.key_id == kid]
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=route.name,
        issuer=ISSUER,
        # iat may lie ahead of the real clock when a test moves the signer's clock forward.
        options={"require": ["exp", "iat", "sub"], "verify_iat": False},
        leeway=SLACK,
    )
    return claims


def kids(signer: AssertionSigner) -> list[str]:
    return [key["kid"] for key in signer.jwks()["keys"]]


def test_assertion_verifies_against_the_published_keys() -> None:
    """An upstream holding only /oauth2/jwks verifies the assertion and reads who is calling."""
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())
    token = signer.sign(principal(), GRAFANA)
    claims = jwt.decode(
        token,
        jwt.PyJWKSet.from_dict(signer.jwks()).keys[0],
        algorithms=["ES256"],
        audience="grafana",
        issuer=ISSUER,
        leeway=SLACK,
    )
    assert claims == {
        "iss": ISSUER,
        "aud": "grafana",
        "sub": "alice",
        "email": "alice@example.com",
        "groups": ["admins", "dev"],
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "idgate_src": "session",
        "idgate_issuer": "oidc",
    }
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


def test_audience_is_the_route() -> None:
    """An assertion minted for one route is refused by an upstream expecting another."""
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())
    token = signer.sign(principal(), GRAFANA)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            token,
            jwt.PyJWKSet.from_dict(signer.jwks()).keys[0],
            algorithms=["ES256"],
            audience="jenkins",
            leeway=SLACK,
        )


def test_email_is_omitted_when_unknown() -> None:
    """A principal without an email gets no email claim rather than a null one."""
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())
    token = signer.sign(principal(email=None), GRAFANA)
    assert "email" not in jwt.decode(token, options={"verify_signature": False})


def test_jwks_publishes_public_parts_only_with_a_thumbprint_kid() -> None:
    """The JWK Set carries no private scalar and names each key by its RFC 7638 thumbprint."""
    [jwk] = AssertionSigner([SECRET], issuer=ISSUER).jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    required = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert jwk["kid"] == thumbprint.decode()


def test_the_same_secret_gives_the_same_key_everywhere() -> None:
    """Two workers sharing a config sign with, and publish, the same key; another secret differs."""
    first = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())
    second = AssertionSigner([Secret(SECRET.reveal())], issuer=ISSUER, clock=Clock())
    assert first.jwks() == second.jwks()
    token = first.sign(principal(), GRAFANA)
    assert verify(token, second, GRAFANA)["sub"] == "alice"
    assert kids(AssertionSigner([OLD_SECRET], issuer=ISSUER)) != kids(first)


def test_rotation_signs_with_the_newest_and_still_publishes_the_old_key() -> None:
    """After a rotation the new secret's key signs; assertions from the old key still verify."""
    before = AssertionSigner([OLD_SECRET], issuer=ISSUER, clock=Clock())
    after = AssertionSigner([SECRET, OLD_SECRET], issuer=ISSUER, clock=Clock())
    [old_kid] = kids(before)
    [new_kid] = kids(AssertionSigner([SECRET], issuer=ISSUER))
    assert kids(after) == [new_kid, old_kid]
    assert jwt.get_unverified_header(after.sign(principal(), GRAFANA))["kid"] == new_kid
    assert verify(before.sign(principal(), GRAFANA), after, GRAFANA)["sub"] == "alice"


def test_a_repeated_secret_is_published_once() -> None:
    """Listing one secret twice does not publish a duplicate key."""
    assert len(kids(AssertionSigner([SECRET, SECRET], issuer=ISSUER))) == 1


def test_expiry_never_outlives_the_identity() -> None:
    """An assertion expires no later than the session or token it was made from."""
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())
    token = signer.sign(principal(expires_at=NOW + 42.9), GRAFANA)
    assert verify(token, signer, GRAFANA)["exp"] == int(NOW) + 42


def test_assertion_is_reused_early_in_its_life_and_re_signed_later() -> None:
    """Within the first 40% of its lifetime the same assertion is returned; after it, a new one."""
    clock = Clock()
    signer = AssertionSigner([SECRET], issuer=ISSUER, lifetime_seconds=300, clock=clock)
    first = signer.sign(principal(), GRAFANA)
    clock.now = NOW + 119
    assert signer.sign(principal(), GRAFANA) == first
    clock.now = NOW + 121
    renewed = signer.sign(principal(), GRAFANA)
    assert renewed != first
    assert verify(renewed, signer, GRAFANA)["iat"] == int(NOW) + 121


def test_distinct_tokens_of_one_identity_share_an_assertion() -> None:
    """Another token of the same user, groups and email (other claims, a later expiry) reuses the
    assertion: it is signed once per identity and route, not once per token."""
    clock = Clock()
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=clock)
    first = signer.sign(principal(), GRAFANA)
    clock.now = NOW + 60
    next_token = dataclasses.replace(
        principal(expires_at=NOW + 7200), claims=MappingProxyType({"jti": "another-token"})
    )

    assert signer.sign(next_token, GRAFANA) == first


def test_reuse_is_per_identity_and_route() -> None:
    """Another route, or the same user with other groups, never gets a cached assertion."""
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())
    grafana = signer.sign(principal(), GRAFANA)
    assert verify(signer.sign(principal(), JENKINS), signer, JENKINS)["aud"] == "jenkins"
    demoted = Principal(
        user="alice",
        email="alice@example.com",
        groups=frozenset({"dev"}),
        claims=MappingProxyType({}),
        source=CredentialSource.SESSION,
        expires_at=NOW + 3600,
    )
    token = signer.sign(demoted, GRAFANA)
    assert token != grafana
    assert verify(token, signer, GRAFANA)["groups"] == ["dev"]


def test_a_cached_assertion_is_not_reused_past_a_shorter_lived_identity() -> None:
    """The same user with a credential that ends sooner gets an assertion ending with it."""
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())
    signer.sign(principal(expires_at=NOW + 3600), GRAFANA)
    token = signer.sign(principal(expires_at=NOW + 60), GRAFANA)
    assert verify(token, signer, GRAFANA)["exp"] == int(NOW) + 60


def test_no_secret_is_a_configuration_error() -> None:
    """A signer without any secret cannot exist: there would be nothing to sign with."""
    with pytest.raises(ValueError, match="secret"):
        AssertionSigner([], issuer=ISSUER)


def test_the_assertion_names_the_issuer_and_differs_per_issuer() -> None:
    """`idgate_issuer` says whose token the identity came from; the same user of another issuer
    never gets the first one's cached assertion. A client certificate has no issuer."""
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=Clock())

    browser = verify(signer.sign(principal(), GRAFANA), signer, GRAFANA)
    partner = verify(signer.sign(principal(issuer="partner"), GRAFANA), signer, GRAFANA)
    certificate = verify(signer.sign(principal(issuer=None), GRAFANA), signer, GRAFANA)

    assert (browser["idgate_issuer"], partner["idgate_issuer"]) == ("oidc", "partner")
    assert "idgate_issuer" not in certificate


def test_the_cache_is_bounded_and_keeps_identities_in_use() -> None:
    """Past 10,000 identities the least recently used assertion goes: one in use all along is
    still reused, the first of the others is signed anew."""
    clock = Clock()
    signer = AssertionSigner([SECRET], issuer=ISSUER, clock=clock)
    hot = signer.sign(principal(), GRAFANA)
    first_other = dataclasses.replace(principal(), user="user-0")
    first = signer.sign(first_other, GRAFANA)
    for number in range(1, 10_000):
        signer.sign(dataclasses.replace(principal(), user=f"user-{number}"), GRAFANA)
        if number % 1_000 == 0:
            assert signer.sign(principal(), GRAFANA) == hot
    clock.now = NOW + 1
    assert signer.sign(principal(), GRAFANA) == hot
    assert signer.sign(first_other, GRAFANA) != first
