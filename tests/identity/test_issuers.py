"""Named issuers: a token is matched to its issuer by `iss` before any key is looked up, and
verified with that issuer's keys, audiences, lifetime and claim mapping only."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from joserfc.jwk import Key
from prometheus_client import CollectorRegistry

from proxy.config.model import ClaimMapping, IssuerSettings, OIDCSettings
from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.identity.bearer import BearerVerifier
from proxy.observability.metrics import Metrics
from proxy.oidc.provider_jwt import KeySource
from proxy.reasons import TokenFailure
from tests.support.issuer import SigningKey, StaticKeys
from tests.support.issuers import bearer_verifier, named_issuer

BROWSER_ISS = "https://sso.example"
PARTNER_ISS = "https://partner.example"
# Both issuers publish a key with the same kid: only the issuer named by `iss` may be asked.
BROWSER_KEY = SigningKey(kid="k1", owner="sso")
PARTNER_KEY = SigningKey(kid="k1", owner="partner")
PARTNER = IssuerSettings(
    name="partner",
    issuer=PARTNER_ISS,
    audiences=("partner-api",),
    claims=ClaimMapping(user=("client_id", "sub"), groups=("roles",)),
)


@dataclass
class CountingKeys:
    keys: KeySource
    asked: list[str | None] = field(default_factory=list)

    async def key_for(self, kid: str | None, alg: str) -> Key:
        self.asked.append(kid)
        return await self.keys.key_for(kid, alg)


class UnreachableKeys:
    async def key_for(self, kid: str | None, alg: str) -> Key:
        raise ProviderUnavailable("keys not loaded")


@dataclass
class World:
    verifier: BearerVerifier
    browser_keys: CountingKeys
    partner_keys: CountingKeys
    metrics: Metrics

    async def failure_of(self, token: str, **options: Any) -> TokenFailure:
        with pytest.raises(InvalidToken) as caught:
            await self.verifier.verify(token, **options)
        return caught.value.failure

    def validations(self, **labels: str) -> float:
        sample = self.metrics.registry.get_sample_value("idgate_token_validations_total", labels)
        return sample or 0.0


def world(
    partner: IssuerSettings = PARTNER, *, browser_audiences: tuple[str, ...] = ("api",)
) -> World:
    oidc = OIDCSettings(issuer=BROWSER_ISS, client_id="idgate", audiences=browser_audiences)
    browser_keys = CountingKeys(StaticKeys((BROWSER_KEY,)))
    partner_keys = CountingKeys(StaticKeys((PARTNER_KEY,)))
    metrics = Metrics(CollectorRegistry())
    verifier = bearer_verifier(oidc, browser_keys, metrics, named_issuer(partner, partner_keys))
    return World(verifier, browser_keys, partner_keys, metrics)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": PARTNER_ISS, "aud": "partner-api", "sub": "s-1", "iat": now, "exp": now + 300}
    return base | overrides


async def test_each_issuer_verifies_its_own_tokens_with_its_own_mapping() -> None:
    w = world()
    partner = await w.verifier.verify(PARTNER_KEY.sign(claims(client_id="billing", roles="a b")))
    browser = await w.verifier.verify(
        BROWSER_KEY.sign(claims(iss=BROWSER_ISS, aud="api", sub="alice", groups=["staff"]))
    )

    assert (partner.issuer, partner.user, set(partner.groups)) == ("partner", "billing", {"a", "b"})
    assert (browser.issuer, browser.user, set(browser.groups)) == ("oidc", "alice", {"staff"})
    assert w.validations(result="valid", reason="ok", issuer="partner") == 1
    assert w.validations(result="valid", reason="ok", issuer="oidc") == 1


async def test_a_token_naming_another_issuers_iss_is_checked_only_with_that_issuers_keys() -> None:
    """A token the browser provider signed (its `k1`) that names the partner's `iss`: the partner's
    `k1` is asked, and its signature does not verify; the browser's keys are never asked."""
    w = world()
    forged = BROWSER_KEY.sign(claims())

    assert await w.failure_of(forged) is TokenFailure.SIGNATURE
    assert w.browser_keys.asked == []
    assert w.partner_keys.asked == ["k1"]


async def test_the_same_kid_at_two_issuers_never_crosses_over() -> None:
    """Each issuer's `k1` verifies its own tokens and neither verifies the other's."""
    w = world()
    partner_token = PARTNER_KEY.sign(claims())
    browser_token = BROWSER_KEY.sign(claims(iss=BROWSER_ISS, aud="api"))
    partner_signed_as_browser = PARTNER_KEY.sign(claims(iss=BROWSER_ISS, aud="api"))

    assert (await w.verifier.verify(partner_token)).issuer == "partner"
    assert (await w.verifier.verify(browser_token)).issuer == "oidc"
    assert await w.failure_of(partner_signed_as_browser) is TokenFailure.SIGNATURE


async def test_a_token_of_an_unknown_issuer_is_refused_before_any_key_lookup() -> None:
    w = world()

    assert await w.failure_of(PARTNER_KEY.sign(claims(iss="https://evil.example"))) is (
        TokenFailure.ISSUER
    )
    assert await w.failure_of(PARTNER_KEY.sign(claims(iss=PARTNER_ISS + "/"))) is (
        TokenFailure.ISSUER
    )
    assert w.browser_keys.asked == w.partner_keys.asked == []
    assert w.validations(result="invalid", reason="issuer", issuer="") == 2


@pytest.mark.parametrize(("iss", "failure"), [(None, "missing_claim"), (7, "malformed")])
async def test_a_token_without_a_string_iss_names_no_issuer(iss: Any, failure: str) -> None:
    w = world()
    token = PARTNER_KEY.sign({k: v for k, v in claims(iss=iss).items() if v is not None})

    assert await w.failure_of(token) == failure
    assert w.partner_keys.asked == []


async def test_a_route_limited_to_one_issuer_refuses_anothers_valid_token() -> None:
    """Refused before any key lookup, and refused again once the token is in the cache."""
    w = world()
    token = PARTNER_KEY.sign(claims())

    assert await w.failure_of(token, accepted={"oidc"}) is TokenFailure.ISSUER_NOT_ACCEPTED
    assert w.partner_keys.asked == []
    assert (await w.verifier.verify(token, accepted={"partner"})).issuer == "partner"
    assert await w.failure_of(token, accepted={"oidc"}) is TokenFailure.ISSUER_NOT_ACCEPTED
    labels = {"result": "invalid", "reason": "issuer_not_accepted", "issuer": "partner"}
    assert w.validations(**labels) == 2


async def test_an_issuer_accepts_only_its_own_audiences() -> None:
    w = world()

    assert await w.failure_of(PARTNER_KEY.sign(claims(aud="api"))) is TokenFailure.AUDIENCE


async def test_an_issuer_whose_keys_are_unreachable_fails_only_its_own_tokens() -> None:
    oidc = OIDCSettings(issuer=BROWSER_ISS, client_id="idgate", audiences=("api",))
    verifier = bearer_verifier(
        oidc,
        StaticKeys((BROWSER_KEY,)),
        Metrics(CollectorRegistry()),
        named_issuer(PARTNER, UnreachableKeys()),
    )

    with pytest.raises(ProviderUnavailable):
        await verifier.verify(PARTNER_KEY.sign(claims()))
    browser = await verifier.verify(BROWSER_KEY.sign(claims(iss=BROWSER_ISS, aud="api")))
    assert browser.issuer == "oidc"


async def test_max_token_lifetime_refuses_longer_lived_tokens_and_tokens_without_iat() -> None:
    w = world(IssuerSettings(**{**_fields(PARTNER), "max_token_lifetime_seconds": 3600}))
    now = int(time.time())

    short = PARTNER_KEY.sign(claims(iat=now, exp=now + 3600))
    long = PARTNER_KEY.sign(claims(iat=now - 60, exp=now + 3600))
    undated = PARTNER_KEY.sign({k: v for k, v in claims().items() if k != "iat"})

    assert (await w.verifier.verify(short)).user == "s-1"
    assert await w.failure_of(long) is TokenFailure.LIFETIME_TOO_LONG
    assert await w.failure_of(undated) is TokenFailure.MISSING_CLAIM


async def test_a_named_issuer_refuses_id_tokens_too() -> None:
    w = world()

    assert await w.failure_of(PARTNER_KEY.sign(claims(nonce="n"))) is TokenFailure.ID_TOKEN


async def test_a_sessions_only_oidc_block_leaves_its_iss_to_a_named_issuer() -> None:
    """Without audiences the `oidc` block takes no bearer tokens; a named issuer for the same
    provider's access tokens then verifies them with its own mapping."""
    same_provider = IssuerSettings(
        name="services",
        issuer=BROWSER_ISS,
        audiences=("api",),
        claims=ClaimMapping(user=("preferred_username", "sub")),
    )
    oidc = OIDCSettings(issuer=BROWSER_ISS, client_id="idgate")
    keys = StaticKeys((BROWSER_KEY,))
    verifier = bearer_verifier(
        oidc, keys, Metrics(CollectorRegistry()), named_issuer(same_provider, keys)
    )

    principal = await verifier.verify(BROWSER_KEY.sign(claims(iss=BROWSER_ISS, aud="api")))

    assert (principal.issuer, principal.user) == ("services", "s-1")


async def test_an_opaque_token_is_refused_as_malformed_when_no_issuer_introspects() -> None:
    w = world()

    assert await w.failure_of("2YotnFZFEjr1zCsicMWpAA") is TokenFailure.MALFORMED


def _fields(settings: IssuerSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in IssuerSettings.__dataclass_fields__}
