"""Provider keys: loaded off the request path, refreshed once per new kid, kept on failure."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from proxy.config.model import OIDCSettings
from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.observability.metrics import Metrics
from proxy.oidc.jwks import JWT_SVID_USE, ProviderKeys, parse_key_set
from proxy.reasons import TokenFailure
from tests.support.issuer import FakeClock, FakeIssuer, SigningKey, serve_issuer

MIN_REFRESH = 10.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def settings(issuer: FakeIssuer, **overrides: Any) -> OIDCSettings:
    base = OIDCSettings(issuer=issuer.url, client_id="idgate", jwks_min_refresh_seconds=MIN_REFRESH)
    return dataclasses.replace(base, **overrides)


MakeKeys = Callable[[OIDCSettings], ProviderKeys]


@pytest.fixture
async def provider_keys(
    http: aiohttp.ClientSession, metrics: Metrics, clock: FakeClock
) -> AsyncIterator[MakeKeys]:
    """A factory of ProviderKeys on the test's clock, each closed when the test ends."""
    created: list[ProviderKeys] = []

    def make(oidc: OIDCSettings) -> ProviderKeys:
        keys = ProviderKeys(oidc.as_issuer, http, metrics, clock=clock)
        created.append(keys)
        return keys

    yield make
    for keys in created:
        await keys.close()


def is_ready(keys: ProviderKeys) -> bool:
    # A function, not the property: mypy would keep `keys.ready` narrowed across the awaits.
    return keys.ready


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_ready_flips_only_after_metadata_and_keys_load(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, metrics: Metrics
) -> None:
    """Not ready while the provider is down or publishes no key; ready once a key is loaded."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.down = True
    keys = provider_keys(settings(issuer))

    await keys.start()
    metadata_while_down = keys.metadata
    assert metadata_while_down is None
    assert not is_ready(keys)
    with pytest.raises(ProviderUnavailable):
        await keys.key_for("k1", "RS256")

    issuer.down = False
    published = issuer.keys
    issuer.keys = []
    assert not await keys.refresh()
    assert keys.metadata is not None
    assert not is_ready(keys)

    issuer.keys = published
    assert await keys.refresh()
    assert is_ready(keys)
    assert (await keys.key_for("k1", "RS256")).kid == "k1"
    assert sample(metrics, "idgate_jwks_refreshes_total", result="failure", issuer="oidc") == 2
    assert sample(metrics, "idgate_jwks_refreshes_total", result="success", issuer="oidc") == 1
    assert sample(metrics, "idgate_jwks_keys", issuer="oidc") == 1
    assert (sample(metrics, "idgate_jwks_last_success_timestamp_seconds", issuer="oidc") or 0) > 0


async def test_a_configured_jwks_uri_skips_discovery(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """With `oidc.jwks_uri` set, keys alone make it ready and discovery is never fetched."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer, jwks_uri=issuer.jwks_uri))

    await keys.start()

    assert is_ready(keys)
    assert keys.metadata is None
    assert issuer.discovery_fetches == 0


async def test_the_background_task_retries_until_keys_load(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """A provider down at startup is retried in the background, and keys load once it is back."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.down = True
    keys = provider_keys(settings(issuer, jwks_refresh_seconds=0.01))
    await keys.start()
    assert not is_ready(keys)

    issuer.down = False
    fetched_before = issuer.jwks_fetches
    # The fetch after the first successful one starts only once that one was applied.
    await asyncio.wait_for(issuer.wait_for_jwks_fetches(fetched_before + 2), timeout=10)

    assert is_ready(keys)


async def test_an_unknown_kid_refreshes_once_per_interval(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, clock: FakeClock
) -> None:
    """Unknown kids cost at most one JWKS fetch per `jwks_min_refresh_seconds`, then UNKNOWN_KEY."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()
    assert issuer.jwks_fetches == 1

    clock.advance(MIN_REFRESH + 1)
    for kid in ("forged-1", "forged-2"):
        with pytest.raises(InvalidToken) as caught:
            await keys.key_for(kid, "RS256")
        assert caught.value.failure is TokenFailure.UNKNOWN_KEY
    assert issuer.jwks_fetches == 2

    clock.advance(MIN_REFRESH + 1)
    with pytest.raises(InvalidToken):
        await keys.key_for("forged-3", "RS256")
    assert issuer.jwks_fetches == 3


async def test_concurrent_unknown_kids_share_one_fetch(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, clock: FakeClock
) -> None:
    """Many requests with new kids at once cause a single JWKS fetch."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()
    clock.advance(MIN_REFRESH + 1)

    results = await asyncio.gather(
        *(keys.key_for(f"forged-{n}", "RS256") for n in range(10)), return_exceptions=True
    )

    assert all(isinstance(result, InvalidToken) for result in results)
    assert issuer.jwks_fetches == 2


async def test_concurrent_refreshes_share_one_fetch(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """refresh() is single-flight: callers arriving during a fetch wait for that fetch."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))

    assert await asyncio.gather(*(keys.refresh() for _ in range(5))) == [True] * 5
    assert issuer.jwks_fetches == 1


async def test_a_rotated_key_is_picked_up_on_its_first_token(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, clock: FakeClock
) -> None:
    """A kid the provider published after the last fetch is found by the one refresh it triggers."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()

    issuer.keys = [SigningKey(kid="k2")]
    clock.advance(MIN_REFRESH + 1)

    assert (await keys.key_for("k2", "RS256")).kid == "k2"
    with pytest.raises(InvalidToken):
        await keys.key_for("k1", "RS256")


async def test_a_failing_provider_keeps_the_loaded_keys(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, clock: FakeClock, metrics: Metrics
) -> None:
    """While the provider is down, known kids still verify and new kids fail as UNKNOWN_KEY."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()

    issuer.down = True
    clock.advance(MIN_REFRESH + 1)
    with pytest.raises(InvalidToken) as caught:
        await keys.key_for("k2", "RS256")

    assert caught.value.failure is TokenFailure.UNKNOWN_KEY
    assert (await keys.key_for("k1", "RS256")).kid == "k1"
    assert is_ready(keys)
    assert sample(metrics, "idgate_jwks_refreshes_total", result="failure", issuer="oidc") == 1
    assert sample(metrics, "idgate_jwks_keys", issuer="oidc") == 1


async def test_a_key_set_without_usable_keys_keeps_the_loaded_keys(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """A JWKS that suddenly holds only unusable keys is a failed refresh, not an empty key set."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()

    issuer.keys = []
    issuer.extra_jwks = [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]

    assert not await keys.refresh()
    assert (await keys.key_for("k1", "RS256")).kid == "k1"


async def test_symmetric_keys_are_never_loaded(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, metrics: Metrics
) -> None:
    """A `kty: oct` key is skipped whatever `alg` it claims, even with HS256 on the allowlist."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.extra_jwks = [
        {"kty": "oct", "kid": "shared", "alg": "HS256", "k": "c2VjcmV0"},
        {"kty": "oct", "kid": "liar", "alg": "RS256", "k": "c2VjcmV0"},
    ]
    keys = provider_keys(settings(issuer, algorithms=("RS256", "HS256")))
    await keys.start()

    with pytest.raises(InvalidToken) as hmac_alg:
        await keys.key_for("shared", "HS256")
    with pytest.raises(InvalidToken) as lying_alg:
        await keys.key_for("liar", "RS256")

    assert hmac_alg.value.failure is TokenFailure.ALGORITHM
    assert lying_alg.value.failure is TokenFailure.UNKNOWN_KEY
    assert sample(metrics, "idgate_jwks_keys", issuer="oidc") == 1


@pytest.mark.parametrize(
    "entry",
    [
        {"use": "enc"},
        {"key_ops": ["encrypt"]},
        {"d": "AQAB"},
        {"n": 12345},
        {"alg": "RSA-OAEP"},
        {"kty": "EC"},
        {"kid": 7},
        {"n": b64url((2**1023 + 1).to_bytes(128, "big"))},
        {"kty": "EC", "crv": "P-256", "x": b64url(bytes(32)), "y": b64url(bytes(32))},
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(bytes(16))},
    ],
    ids=[
        "use-enc",
        "key-ops-encrypt",
        "private",
        "broken-modulus",
        "enc-alg",
        "wrong-kty",
        "kid",
        "rsa-1024-bits",
        "ec-point-off-the-curve",
        "ed25519-too-short",
    ],
)
async def test_unusable_keys_are_skipped_without_failing_the_others(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, metrics: Metrics, entry: dict[str, Any]
) -> None:
    """A key that is not for signatures, private, broken or too short (RSA under 2048 bits, NIST
    SP 800-131A) is ignored; the rest still load."""
    issuer = await serve_issuer(aiohttp_server)
    odd = SigningKey(kid="odd").jwk | entry
    issuer.extra_jwks = [odd, "not-an-object"]
    keys = provider_keys(settings(issuer))

    await keys.start()

    assert is_ready(keys)
    assert sample(metrics, "idgate_jwks_keys", issuer="oidc") == 1
    with pytest.raises(InvalidToken):
        await keys.key_for("odd", "RS256")


async def test_a_key_without_alg_verifies_what_its_type_allows(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """Without `alg`, an RSA key serves RS*/PS* and a P-256 key ES256, within the allowlist."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.keys = [
        SigningKey(kid="rsa", publish_alg=False),
        SigningKey(kid="ec", alg="ES256", publish_alg=False),
        SigningKey(kid="ed", alg="EdDSA", publish_alg=False),
    ]
    keys = provider_keys(settings(issuer))
    await keys.start()

    assert (await keys.key_for("rsa", "RS256")).key_type == "RSA"
    assert (await keys.key_for("rsa", "PS256")).key_type == "RSA"
    assert (await keys.key_for("ec", "ES256")).key_type == "EC"
    assert (await keys.key_for("ed", "EdDSA")).key_type == "OKP"
    with pytest.raises(InvalidToken) as caught:
        await keys.key_for("ec", "RS256")
    assert caught.value.failure is TokenFailure.ALGORITHM


async def test_a_key_with_alg_verifies_only_that_alg(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """A published `alg` binds the key: another allowlisted alg with its kid is ALGORITHM."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()

    with pytest.raises(InvalidToken) as caught:
        await keys.key_for("k1", "PS256")

    assert caught.value.failure is TokenFailure.ALGORITHM


async def test_an_alg_off_the_allowlist_is_refused_without_a_fetch(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys, clock: FakeClock
) -> None:
    """`none`, HMAC or any alg not configured fails as ALGORITHM and costs no refresh."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()
    clock.advance(MIN_REFRESH + 1)

    for alg in ("none", "HS256", "RS512"):
        with pytest.raises(InvalidToken) as caught:
            await keys.key_for("new", alg)
        assert caught.value.failure is TokenFailure.ALGORITHM
    assert issuer.jwks_fetches == 1


async def test_a_token_without_kid_needs_exactly_one_fitting_key(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """Without a kid, the single key for the alg is used; with two candidates, none is."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.keys = [SigningKey(kid="k1"), SigningKey(kid="ec", alg="ES256")]
    keys = provider_keys(settings(issuer))
    await keys.start()
    assert (await keys.key_for(None, "RS256")).kid == "k1"

    issuer.keys.append(SigningKey(kid="k2"))
    assert await keys.refresh()

    with pytest.raises(InvalidToken) as caught:
        await keys.key_for(None, "RS256")
    assert caught.value.failure is TokenFailure.UNKNOWN_KEY


async def test_close_stops_the_background_refresh(
    aiohttp_server: AiohttpServer, provider_keys: MakeKeys
) -> None:
    """After close(), the keys object owns no running task."""
    issuer = await serve_issuer(aiohttp_server)
    keys = provider_keys(settings(issuer))
    await keys.start()
    before = {task for task in asyncio.all_tasks() if task.get_name() == "idgate-keys-oidc"}

    await keys.close()

    assert len(before) == 1
    assert all(task.done() for task in before)


def test_a_spiffe_bundle_yields_its_jwt_svid_keys_only() -> None:
    """SPIFFE JWT-SVID 6.2: of a trust bundle, only `use: jwt-svid` entries (or entries without
    `use`) verify JWT-SVIDs; its X.509 authorities and any `sig` key do not, and the bundle's own
    members (`spiffe_refresh_hint`, `spiffe_sequence`) are tolerated. A provider's JWKS, in turn,
    never lends a `jwt-svid` key to provider tokens."""
    svid, bare, x509, sig = (
        SigningKey(kid=kid, alg="ES256") for kid in ("svid", "bare", "x509", "sig")
    )
    bundle = {
        "spiffe_refresh_hint": 300,
        "spiffe_sequence": 12,
        "keys": [
            svid.jwk | {"use": "jwt-svid"},
            {key: value for key, value in bare.jwk.items() if key != "use"},
            x509.jwk | {"use": "x509-svid", "x5c": ["MIIB"]},
            sig.jwk,
        ],
    }
    algorithms = frozenset({"ES256"})

    spiffe = parse_key_set(bundle, algorithms, key_use=JWT_SVID_USE)
    provider = parse_key_set(bundle, algorithms)

    assert {kid for kid, _ in spiffe.keys} == {"svid", "bare"}
    assert {kid for kid, _ in provider.keys} == {"bare", "sig"}
