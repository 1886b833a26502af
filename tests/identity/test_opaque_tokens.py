"""Opaque tokens: only an active answer about this issuer's access token for our API identifies,
cached by token hash, never beyond `exp` nor the configured ceiling, one call per new token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from joserfc.jwk import Key
from prometheus_client import CollectorRegistry

from proxy.config.model import IntrospectionSettings, IssuerSettings, OIDCSettings, Secret
from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.identity.bearer import BearerVerifier
from proxy.identity.issuers import Issuer
from proxy.identity.opaque_tokens import OpaqueTokenVerifier
from proxy.identity.principal import CredentialSource, Principal
from proxy.identity.token_kind import refuse_id_tokens
from proxy.observability.metrics import Metrics
from proxy.reasons import TokenFailure
from tests.support.issuer import FakeClock
from tests.support.issuers import LoadedKeys, bearer_verifier

ISSUER = "https://id.example.com"
API = "https://api.example.com"
NOW = 1_000.0


class Endpoint:
    """An introspection endpoint whose answers a test writes; counts the questions."""

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.answer = dict(answer)
        self.calls = 0
        self.asked = asyncio.Event()
        self.release: asyncio.Event | None = None
        self.down = False

    async def introspect(self, token: str) -> Mapping[str, Any]:
        self.calls += 1
        self.asked.set()
        if self.release is not None:
            await self.release.wait()
        if self.down:
            raise ProviderUnavailable("the token cannot be checked now")
        return self.answer


def active(**claims: Any) -> dict[str, Any]:
    return {
        "active": True,
        "iss": ISSUER,
        "aud": API,
        "sub": "service-a",
        "exp": NOW + 300,
        "token_type": "Bearer",
        **claims,
    }


def principal_for(claims: Mapping[str, Any], expires_at: float) -> Principal | None:
    user = claims.get("sub")
    if not isinstance(user, str):
        return None
    return Principal(
        user=user,
        email=None,
        groups=frozenset(),
        claims=MappingProxyType(dict(claims)),
        source=CredentialSource.BEARER,
        expires_at=expires_at,
    )


def verifier(
    endpoint: Endpoint,
    clock: FakeClock,
    *,
    cache_seconds: int = 60,
    require_audience: bool = True,
) -> OpaqueTokenVerifier:
    return OpaqueTokenVerifier(
        name="opaque",
        issuer=ISSUER,
        audiences=(API,),
        settings=IntrospectionSettings(
            client_id="idgate",
            client_secret=Secret("s"),
            cache_seconds=cache_seconds,
            require_audience=require_audience,
        ),
        introspector=endpoint,
        principal_for=principal_for,
        leeway_seconds=0,
        clock=clock,
    )


async def test_an_active_answer_names_the_principal_until_its_exp() -> None:
    """The principal expires with the token, whatever the cache ceiling."""
    principal = await verifier(Endpoint(active()), FakeClock(now=NOW)).verify("opaque-1")

    assert principal.user == "service-a"
    assert principal.expires_at == NOW + 300
    assert principal.claims["aud"] == API


async def test_an_answer_is_reused_for_at_most_cache_seconds() -> None:
    """Within the ceiling the endpoint is not asked again; after it, it is (a revocation at the
    provider takes effect then)."""
    endpoint, clock = Endpoint(active()), FakeClock(now=NOW)
    tokens = verifier(endpoint, clock, cache_seconds=60)
    await tokens.verify("opaque-1")

    clock.now = NOW + 59.9
    await tokens.verify("opaque-1")
    assert endpoint.calls == 1

    clock.now = NOW + 60
    endpoint.answer = {"active": False}
    with pytest.raises(InvalidToken) as refused:
        await tokens.verify("opaque-1")
    assert refused.value.failure is TokenFailure.INACTIVE
    assert endpoint.calls == 2


async def test_an_answer_is_never_reused_beyond_the_tokens_exp() -> None:
    """A token expiring before the ceiling is asked about again once it has expired, and then
    refused: the cache never outlives the token."""
    endpoint, clock = Endpoint(active(exp=NOW + 10)), FakeClock(now=NOW)
    tokens = verifier(endpoint, clock, cache_seconds=300)
    await tokens.verify("opaque-1")

    clock.now = NOW + 10
    with pytest.raises(InvalidToken) as refused:
        await tokens.verify("opaque-1")
    assert refused.value.failure is TokenFailure.EXPIRED
    assert endpoint.calls == 2


async def test_without_exp_the_identity_lasts_as_long_as_the_answer_is_reused() -> None:
    """An answer without `exp` holds as long as it may be reused, no longer."""
    principal = await verifier(Endpoint(active(exp=None)), FakeClock(now=NOW)).verify("t")

    assert principal.expires_at == NOW + 60


async def test_cache_seconds_zero_asks_every_time() -> None:
    """`cache_seconds: 0` asks the endpoint on every request."""
    endpoint, clock = Endpoint(active()), FakeClock(now=NOW)
    tokens = verifier(endpoint, clock, cache_seconds=0)

    await tokens.verify("opaque-1")
    await tokens.verify("opaque-1")

    assert endpoint.calls == 2


async def test_an_inactive_answer_is_refused_and_not_cached() -> None:
    """`active: false` is 401 `inactive`, and asking again asks the endpoint again."""
    endpoint = Endpoint({"active": False})
    tokens = verifier(endpoint, FakeClock(now=NOW))

    for _ in range(2):
        with pytest.raises(InvalidToken) as refused:
            await tokens.verify("revoked")
        assert refused.value.failure is TokenFailure.INACTIVE
    assert endpoint.calls == 2


@pytest.mark.parametrize(
    ("answer", "failure"),
    [
        # Issued for another API (another client's audience).
        (active(aud="https://other.example.com"), TokenFailure.AUDIENCE),
        (active(aud=["https://other.example.com", "x"]), TokenFailure.AUDIENCE),
        (active(aud=None), TokenFailure.AUDIENCE),
        # Issued by someone else, as this endpoint admits.
        (active(iss="https://evil.example.com"), TokenFailure.ISSUER),
        # A refresh token is no access token.
        (active(token_type="refresh_token"), TokenFailure.TOKEN_TYPE),
        (active(token_type="DPoP"), TokenFailure.TOKEN_TYPE),
        (active(token_type=7), TokenFailure.TOKEN_TYPE),
        (active(exp=NOW - 1), TokenFailure.EXPIRED),
        (active(exp="soon"), TokenFailure.MALFORMED),
        (active(exp=True), TokenFailure.MALFORMED),
        (active(nbf=NOW + 30), TokenFailure.NOT_YET_VALID),
        (active(sub=None), TokenFailure.MISSING_CLAIM),
        ({**active(), "active": "true"}, TokenFailure.INACTIVE),
    ],
)
async def test_answers_that_do_not_vouch_for_this_api_are_refused(
    answer: dict[str, Any], failure: TokenFailure
) -> None:
    """An answer about another API's, another issuer's or a refresh token, or an expired or
    malformed one, is refused with its failure."""
    present = {name: value for name, value in answer.items() if value is not None}
    with pytest.raises(InvalidToken) as refused:
        await verifier(Endpoint(present), FakeClock(now=NOW)).verify("t")

    assert refused.value.failure is failure


async def test_an_answer_without_aud_passes_only_when_not_required() -> None:
    """`require_audience: false` accepts an answer that names no audience."""
    answer = {name: value for name, value in active().items() if name != "aud"}

    principal = await verifier(Endpoint(answer), FakeClock(now=NOW), require_audience=False).verify(
        "t"
    )

    assert principal.user == "service-a"


async def test_one_of_several_audiences_is_enough() -> None:
    """An `aud` list naming one of the issuer's audiences among others passes."""
    answer = active(aud=["https://other.example.com", API])

    principal = await verifier(Endpoint(answer), FakeClock(now=NOW)).verify("t")

    assert principal.user == "service-a"


async def test_an_unreachable_endpoint_fails_closed_and_nothing_is_cached() -> None:
    """No answer is ProviderUnavailable, never an identity, and the next request asks again."""
    endpoint, clock = Endpoint(active()), FakeClock(now=NOW)
    endpoint.down = True
    tokens = verifier(endpoint, clock)

    with pytest.raises(ProviderUnavailable):
        await tokens.verify("opaque-1")

    endpoint.down = False
    assert (await tokens.verify("opaque-1")).user == "service-a"
    assert endpoint.calls == 2


async def test_concurrent_requests_with_one_new_token_share_one_call() -> None:
    """Twenty requests with one new token cost one introspection call."""
    endpoint = Endpoint(active())
    endpoint.release = asyncio.Event()
    tokens = verifier(endpoint, FakeClock(now=NOW))

    waiting = [asyncio.create_task(tokens.verify("opaque-1")) for _ in range(20)]
    # The call starts after every waiter has joined it (tasks run in the order they were made).
    await endpoint.asked.wait()
    endpoint.release.set()
    principals = await asyncio.gather(*waiting)

    assert endpoint.calls == 1
    assert {principal.user for principal in principals} == {"service-a"}


async def test_a_caller_giving_up_does_not_cancel_the_call_others_wait_for() -> None:
    """A cancelled request leaves the shared call running for the others."""
    endpoint = Endpoint(active())
    endpoint.release = asyncio.Event()
    tokens = verifier(endpoint, FakeClock(now=NOW))
    first = asyncio.create_task(tokens.verify("opaque-1"))
    second = asyncio.create_task(tokens.verify("opaque-1"))
    await endpoint.asked.wait()

    first.cancel()
    endpoint.release.set()

    assert (await second).user == "service-a"
    assert endpoint.calls == 1


class NoKeys:
    async def key_for(self, kid: str | None, alg: str) -> Key:
        raise AssertionError("an opaque token needs no signing key")


def verifier_with_opaque_issuer(
    endpoint: Endpoint | None, *, cache_seconds: int = 60
) -> BearerVerifier:
    """The bearer verifier over the `oidc` block's issuer and, unless `endpoint` is None, an
    issuer `opaque` that introspects at it."""
    oidc = OIDCSettings(issuer="https://login.example.com", client_id="idgate", audiences=(API,))
    introspection = IntrospectionSettings(
        client_id="idgate", client_secret=Secret("s"), cache_seconds=cache_seconds
    )
    settings = IssuerSettings(
        name="opaque", issuer=ISSUER, audiences=(API,), introspection=introspection
    )
    issuers = (
        ()
        if endpoint is None
        else (
            Issuer(
                settings,
                LoadedKeys(NoKeys()),
                refuse_id_tokens=refuse_id_tokens(None),
                introspector=endpoint,
            ),
        )
    )
    return bearer_verifier(oidc, NoKeys(), Metrics(CollectorRegistry()), *issuers)


async def test_the_bearer_verifier_hands_opaque_tokens_to_the_introspecting_issuer() -> None:
    """A token that is not a JWT goes to the issuer with `introspection`, whose name the principal
    carries."""
    endpoint = Endpoint({**active(), "exp": time.time() + 300})

    principal = await verifier_with_opaque_issuer(endpoint).verify("opaque-1")

    assert (principal.user, principal.issuer) == ("service-a", "opaque")


async def test_the_bearer_cache_never_keeps_an_answer_longer_than_its_issuer_may() -> None:
    """With `cache_seconds: 0` every request asks again, though the token's `exp` is far off:
    the bearer verifier's own cache (until `exp`) must not hold opaque tokens."""
    endpoint = Endpoint({**active(), "exp": time.time() + 300})
    tokens = verifier_with_opaque_issuer(endpoint, cache_seconds=0)

    await tokens.verify("opaque-1")
    await tokens.verify("opaque-1")

    assert endpoint.calls == 2


async def test_without_an_introspecting_issuer_an_opaque_token_is_malformed() -> None:
    """With no issuer that introspects, a token that is not a JWT is malformed."""
    with pytest.raises(InvalidToken) as refused:
        await verifier_with_opaque_issuer(None).verify("opaque-1")

    assert refused.value.failure is TokenFailure.MALFORMED


async def test_a_route_limited_to_other_issuers_refuses_the_introspected_token() -> None:
    """A route whose `issuers` leave out the introspecting one refuses its tokens, unasked."""
    endpoint = Endpoint({**active(), "exp": time.time() + 300})

    with pytest.raises(InvalidToken) as refused:
        await verifier_with_opaque_issuer(endpoint).verify("opaque-1", accepted={"oidc"})

    assert refused.value.failure is TokenFailure.ISSUER_NOT_ACCEPTED
    assert endpoint.calls == 0
