"""The API server as an issuer: the pod's token, re-read on every call, goes to it and nowhere
else; TokenReview answers are believed only for the same account and audience, and cached briefly.

Against a stand-in API server (tests/support/kubernetes_api.py): no real cluster runs here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from proxy.errors import InvalidToken, ProviderUnavailable
from proxy.oidc.discovery import WELL_KNOWN_PATH, ProviderError
from proxy.oidc.kubernetes_api import KubernetesApi
from proxy.oidc.kubernetes_keys import JWKS_PATH
from proxy.oidc.token_review import TokenReviews
from proxy.reasons import TokenFailure
from tests.support.certificates import CertificateAuthority
from tests.support.issuer import FakeClock
from tests.support.kubernetes_api import (
    OtherOrigin,
    StandInApiServer,
    serve_other_origin,
)

USER = "system:serviceaccount:payments:frontend"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def elsewhere(aiohttp_server: AiohttpServer) -> OtherOrigin:
    return await serve_other_origin(aiohttp_server)


def api_for(
    cluster: StandInApiServer, http: aiohttp.ClientSession, **overrides: object
) -> KubernetesApi:
    return KubernetesApi(cluster.settings(**overrides), http, timeout=5.0)


async def test_discovery_and_keys_come_from_the_api_server_with_the_pods_token(
    cluster: StandInApiServer, http: aiohttp.ClientSession
) -> None:
    """Over the cluster CA, presenting the token from the pod's token file."""
    api = api_for(cluster, http)

    discovery = await api.get(WELL_KNOWN_PATH)
    jwks = await api.get(JWKS_PATH)

    assert discovery["issuer"] == cluster.issuer
    assert jwks["keys"][0]["kid"] == "cluster-1"
    pod_token = cluster.token_file.read_text()
    assert set(cluster.authorizations("/openid/v1/jwks")) == {f"Bearer {pod_token}"}


async def test_a_rotated_pod_token_is_used_on_the_next_call(
    cluster: StandInApiServer, http: aiohttp.ClientSession
) -> None:
    """The kubelet rotates the token file; the API server refuses the old token from then on,
    and the next call already sends the new one."""
    api = api_for(cluster, http)
    await api.get(JWKS_PATH)
    old = cluster.token_file.read_text()

    new = cluster.rotate_pod_token()
    await api.get(JWKS_PATH)

    assert cluster.authorizations("/openid/v1/jwks") == [f"Bearer {old}", f"Bearer {new}"]


async def test_a_redirect_is_not_followed_with_the_token(
    cluster: StandInApiServer,
    http: aiohttp.ClientSession,
    elsewhere: OtherOrigin,
) -> None:
    """An API server answering with a redirect gets an error, and the target hears nothing."""
    cluster.redirect_to = elsewhere.url
    api = api_for(cluster, http)

    with pytest.raises(ProviderError, match="HTTP 302"):
        await api.get(JWKS_PATH)

    assert elsewhere.authorizations == []


async def test_an_api_server_the_cluster_ca_does_not_vouch_for_is_refused(
    cluster: StandInApiServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Another CA's file: the TLS handshake fails before any token is sent."""
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_bytes(CertificateAuthority.create("another cluster").root.pem)
    api = api_for(cluster, http, ca_file=other_ca)

    with pytest.raises(ProviderError, match="unreachable"):
        await api.get(JWKS_PATH)

    assert cluster.requests == []


@pytest.mark.parametrize("missing", ["ca_file", "token_file"])
async def test_a_missing_file_is_a_provider_error_naming_it(
    cluster: StandInApiServer, http: aiohttp.ClientSession, tmp_path: Path, missing: str
) -> None:
    """Outside a pod (or before the volume is mounted) the error says which file is missing."""
    absent = tmp_path / "absent"
    api = api_for(cluster, http, **{missing: absent})

    with pytest.raises(ProviderError, match=str(absent)):
        await api.get(JWKS_PATH)


def reviews_for(
    cluster: StandInApiServer,
    http: aiohttp.ClientSession,
    *,
    clock: FakeClock | None = None,
    cache_size: int = 100,
) -> TokenReviews:
    return TokenReviews(
        api_for(cluster, http),
        audiences=("idgate",),
        cache_seconds=10.0,
        cache_size=cache_size,
        clock=clock or FakeClock(),
    )


async def test_a_token_the_api_server_stands_behind_passes_and_is_asked_once(
    cluster: StandInApiServer, http: aiohttp.ClientSession
) -> None:
    """The review names the token and idgate's audiences; its answer serves the next request."""
    reviews = reviews_for(cluster, http)
    token = cluster.service_account_token()

    await reviews.check(token, user=USER, expires_at=2e9)
    await reviews.check(token, user=USER, expires_at=2e9)

    assert cluster.reviews == [{"token": token, "audiences": ["idgate"]}]


async def test_a_deleted_service_accounts_token_is_refused(
    cluster: StandInApiServer, http: aiohttp.ClientSession
) -> None:
    """Valid signature, unexpired, but the API server no longer authenticates it."""
    cluster.deleted.add("payments/frontend")
    token = cluster.service_account_token()

    with pytest.raises(InvalidToken) as raised:
        await reviews_for(cluster, http).check(token, user=USER, expires_at=2e9)

    assert raised.value.failure is TokenFailure.TOKEN_REVIEW


async def test_an_answer_for_another_account_or_audience_vouches_for_nothing(
    cluster: StandInApiServer, http: aiohttp.ClientSession
) -> None:
    """Authenticated as someone else, or for an audience idgate did not ask about, is refused."""
    reviews = reviews_for(cluster, http)
    other_account = cluster.service_account_token("payments", "backend")
    other_audience = cluster.service_account_token(audience="vault")

    for token in (other_account, other_audience):
        with pytest.raises(InvalidToken):
            await reviews.check(token, user=USER, expires_at=2e9)


async def test_an_answer_is_reused_briefly_and_never_beyond_the_tokens_exp(
    cluster: StandInApiServer, http: aiohttp.ClientSession
) -> None:
    """After the cache period, or the token's exp if sooner, the API server is asked again."""
    clock = FakeClock()
    reviews = reviews_for(cluster, http, clock=clock)
    token = cluster.service_account_token()

    await reviews.check(token, user=USER, expires_at=clock.now + 3)
    clock.advance(3)
    await reviews.check(token, user=USER, expires_at=clock.now + 60)
    clock.advance(9)
    await reviews.check(token, user=USER, expires_at=clock.now + 60)
    assert len(cluster.reviews) == 2
    cluster.deleted.add("payments/frontend")
    clock.advance(1)

    with pytest.raises(InvalidToken):
        await reviews.check(token, user=USER, expires_at=clock.now + 60)
    assert len(cluster.reviews) == 3


async def test_the_cache_is_bounded(cluster: StandInApiServer, http: aiohttp.ClientSession) -> None:
    """Beyond its size the least recently used answer goes, and is asked for again."""
    reviews = reviews_for(cluster, http, cache_size=1)
    first, second = cluster.service_account_token(), cluster.service_account_token()

    for token in (first, second, first):
        await reviews.check(token, user=USER, expires_at=2e9)

    assert [review["token"] for review in cluster.reviews] == [first, second, first]


async def test_an_api_server_that_cannot_be_asked_fails_closed(
    cluster: StandInApiServer, http: aiohttp.ClientSession
) -> None:
    """A review the API server does not answer is a 503 for the token, never a pass."""
    cluster.down = True
    token = cluster.service_account_token()

    with pytest.raises(ProviderUnavailable):
        await reviews_for(cluster, http).check(token, user=USER, expires_at=2e9)

    assert cluster.reviews == []
