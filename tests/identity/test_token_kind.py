"""An ID token is never a bearer credential: ID-token claims, idgate's client as audience, `typ`."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken
from proxy.identity.bearer import BearerVerifier
from proxy.identity.token_kind import ID_TOKEN_CLAIMS
from proxy.observability.metrics import Metrics
from proxy.reasons import TokenFailure
from tests.support.gate import Gate
from tests.support.issuer import FakeIssuer, SigningKey, StaticKeys, forge
from tests.support.issuers import bearer_verifier
from tests.support.settings import AUDIENCE
from tests.support.signed_in import sign_in

ISSUER = "https://issuer.example"
CLIENT_ID = "idgate"
API = "https://api.example"
KEY = SigningKey(kid="k1")


def verifier(**oidc: Any) -> tuple[BearerVerifier, Metrics]:
    settings = OIDCSettings(issuer=ISSUER, client_id=CLIENT_ID, **({"audiences": (API,)} | oidc))
    metrics = Metrics(CollectorRegistry())
    return bearer_verifier(settings, StaticKeys((KEY,)), metrics), metrics


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": API, "sub": "alice", "iat": now, "exp": now + 300} | overrides


def id_token(**overrides: Any) -> str:
    """An ID token as the provider hands idgate at sign-in (OIDC Core 2)."""
    issuer = FakeIssuer(keys=[KEY], url=ISSUER, client_id=CLIENT_ID)
    return issuer.id_token(nonce="n-0S6_WzA2Mj", auth_time=int(time.time()), **overrides)


async def failure_of(bearer: BearerVerifier, token: str) -> TokenFailure:
    with pytest.raises(InvalidToken) as caught:
        await bearer.verify(token)
    return caught.value.failure


def invalid_count(metrics: Metrics, reason: str) -> float:
    labels = {"result": "invalid", "reason": reason, "issuer": "oidc"}
    return metrics.registry.get_sample_value("idgate_token_validations_total", labels) or 0.0


# --- ID tokens ------------------------------------------------------------------------------------


@pytest.mark.parametrize("audiences", [(), (API,)], ids=["no-audiences", "api-audience"])
async def test_an_id_token_for_idgate_is_refused_as_one(audiences: tuple[str, ...]) -> None:
    """idgate's own ID token is refused with reason id_token, with or without bearer audiences,
    and the refusal is counted under that reason."""
    bearer, metrics = verifier(audiences=audiences)

    assert await failure_of(bearer, id_token()) is TokenFailure.ID_TOKEN
    assert invalid_count(metrics, "id_token") == 1


@pytest.mark.parametrize("name", ID_TOKEN_CLAIMS)
async def test_a_token_with_an_id_token_claim_is_refused_whatever_its_audience(name: str) -> None:
    """`nonce`, `at_hash`, `c_hash` or `s_hash` mark an ID token, even one for the API audience."""
    bearer, _ = verifier()

    assert await failure_of(bearer, KEY.sign(claims(**{name: "x"}))) is TokenFailure.ID_TOKEN


@pytest.mark.parametrize("aud", [CLIENT_ID, [API, CLIENT_ID], [CLIENT_ID, API]])
async def test_a_token_whose_audience_names_the_client_is_refused(aud: Any) -> None:
    """An `aud` naming idgate's client_id is an ID token's, even beside the API audience, as a
    provider that copies a client's extra audiences into its ID tokens sends them."""
    bearer, _ = verifier()

    assert await failure_of(bearer, KEY.sign(claims(aud=aud))) is TokenFailure.ID_TOKEN


async def test_an_access_token_for_the_api_is_accepted() -> None:
    """A token for the API audience with no ID-token claim identifies its subject."""
    bearer, _ = verifier()

    assert (await bearer.verify(KEY.sign(claims()))).user == "alice"


async def test_without_audiences_no_bearer_token_is_accepted() -> None:
    """With `oidc.audiences` unset an otherwise valid access token names no accepted audience."""
    bearer, _ = verifier(audiences=())

    assert await failure_of(bearer, KEY.sign(claims())) is TokenFailure.AUDIENCE


async def test_id_token_claims_are_read_only_once_the_signature_verified() -> None:
    """A forged token with `nonce` fails on its signature: the kind of a token nobody signed is
    not worth a reason of its own."""
    bearer, _ = verifier()
    forged = forge({"alg": "RS256", "kid": "k1"}, claims(nonce="x"), b"not a signature")

    assert await failure_of(bearer, forged) is TokenFailure.SIGNATURE


# --- the opt-in -----------------------------------------------------------------------------------


@pytest.mark.parametrize("audiences", [(), (API,)], ids=["no-audiences", "api-audience"])
async def test_the_opt_in_accepts_idgates_own_id_tokens(audiences: tuple[str, ...]) -> None:
    """`accept_client_id_audience` restores the old behaviour: idgate's ID tokens identify."""
    bearer, _ = verifier(audiences=audiences, accept_client_id_audience=True)

    assert (await bearer.verify(id_token())).user == "alice"
    assert (await bearer.verify(KEY.sign(claims(aud=CLIENT_ID)))).user == "alice"


async def test_the_opt_in_still_refuses_id_tokens_for_other_clients() -> None:
    """A token with `nonce` whose `aud` does not name idgate's client is nobody's access token."""
    bearer, _ = verifier(accept_client_id_audience=True)

    assert await failure_of(bearer, KEY.sign(claims(nonce="x"))) is TokenFailure.ID_TOKEN


# --- typ: at+jwt ----------------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
async def test_a_required_access_token_type_is_matched_case_insensitively(typ: str) -> None:
    """RFC 9068 2.1: `at+jwt` or `application/at+jwt`, compared as media types."""
    bearer, _ = verifier(require_access_token_type=True)

    assert (await bearer.verify(KEY.sign(claims(), headers={"typ": typ}))).user == "alice"


@pytest.mark.parametrize(
    "typ", ["JWT", "jwt", "logout+jwt", "at+jwt+x", "application/jwt", "x/at+jwt", 1, None]
)
async def test_a_required_access_token_type_refuses_every_other(typ: Any) -> None:
    """With `require_access_token_type`, `typ: JWT` (an ID token's), another type or none fails."""
    bearer, metrics = verifier(require_access_token_type=True)
    headers = {"typ": typ}  # None: pyjwt leaves `typ` out

    assert await failure_of(bearer, KEY.sign(claims(), headers=headers)) is TokenFailure.TOKEN_TYPE
    assert invalid_count(metrics, "token_type") == 1


async def test_the_access_token_type_is_not_required_by_default() -> None:
    """Without the option a `typ: JWT` access token for the API is accepted (many providers)."""
    bearer, _ = verifier()

    assert (await bearer.verify(KEY.sign(claims(), headers={"typ": "JWT"}))).user == "alice"


# --- through idgate -------------------------------------------------------------------------------


async def test_the_id_token_from_a_sign_in_does_not_open_a_route(gate: Gate) -> None:
    """The ID token the provider issued at a real sign-in, sent as a bearer token, gets 401
    invalid_token, counted as id_token; an access token for the API opens the same route."""
    await sign_in(gate)
    [issued] = gate.issuer.issued_id_tokens

    refused = await gate.client.get("/api/x", headers={"Authorization": f"Bearer {issued}"})
    allowed = await gate.client.get("/api/x", headers=gate.bearer(aud=AUDIENCE))

    assert refused.status == 401
    assert (await refused.json())["reason"] == "invalid_token"
    labels = {"result": "invalid", "reason": "id_token", "issuer": "oidc"}
    assert gate.metric("idgate_token_validations_total", **labels) == 1
    assert allowed.status == 200
