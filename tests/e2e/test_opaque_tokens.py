"""Opaque access tokens and RFC 9728 through a real `idgate serve` and two real providers.

One provider issues JWT access tokens (the `oidc` block); a second one, started with
`--access-token-format opaque`, issues random strings that only its introspection endpoint
explains (the issuer `opaque`). The same config serves both kinds of token. Stopping a provider
changes state, so the outage test gets a provider and an idgate of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from tests.e2e.conftest import API_AUDIENCE, OidcProvider
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate
from tests.e2e.oidc_provider import running_provider
from tests.support.upstream import EchoUpstream

API_HOST = "api.idgate.test"
RESOURCE = f"https://{API_HOST}/api"
METADATA_URL = f"https://{API_HOST}/.well-known/oauth-protected-resource/api"
SERVICE_A = ("service-a", "service-a-secret")


def opaque_document(jwt_issuer: str, opaque_issuer: str, upstream: str) -> dict[str, Any]:
    document = base_document(
        jwt_issuer,
        [
            {
                "name": "api",
                "path": "/api",
                "upstream": upstream,
                "allow": {"authenticated": True},
                "resource_metadata": {"resource": RESOURCE, "scopes_supported": ["api:read"]},
            },
            {
                "name": "deploy",
                "path": "/deploy",
                "upstream": upstream,
                "allow": {"claims": {"client_id": "service-a"}},
            },
            {
                "name": "browser-only",
                "path": "/browser-only",
                "upstream": upstream,
                "issuers": ["oidc"],
                "allow": {"authenticated": True},
            },
        ],
    )
    document["issuers"] = [
        {
            "name": "opaque",
            "issuer": opaque_issuer,
            "audiences": [API_AUDIENCE],
            # A client_credentials token has no `sub` (no user): its client names it.
            "claims": {"user": ["sub", "client_id"]},
            "http_timeout": "2s",
            "introspection": {"client_id": "idgate", "client_secret": "${IDGATE_CLIENT_SECRET}"},
        }
    ]
    return document


@pytest.fixture(scope="module")
def opaque_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with running_provider(
        tmp_path_factory.mktemp("opaque-provider"), shared=True, access_token_format="opaque"
    ) as provider:
        yield provider


@pytest.fixture(scope="module")
def gate(
    oidc_provider: OidcProvider,
    opaque_provider: OidcProvider,
    upstream_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IdgateProcess]:
    document = opaque_document(
        oidc_provider.issuer, opaque_provider.issuer, f"http://127.0.0.1:{upstream_port}"
    )
    with running_idgate(tmp_path_factory.mktemp("idgate"), document) as process:
        yield process


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: Any


async def call(gate: IdgateProcess, path: str, token: str | None = None) -> Answer:
    """One GET through idgate for the API's host; the body is the echo upstream's account of
    what it received, or idgate's own JSON."""
    headers = {"Host": API_HOST}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http, http.get(gate.url + path, headers=headers) as resp:
        return Answer(resp.status, resp.headers, await resp.json())


def unique(prefix: str) -> str:
    return f"{prefix}/{uuid4().hex}"


async def test_a_client_credentials_token_is_introspected_end_to_end(
    gate: IdgateProcess, opaque_provider: OidcProvider, upstream: EchoUpstream
) -> None:
    """The provider's opaque token is no JWT; its introspection answer names service-a, its
    groups and client, and a policy on `client_id` reads it like any claim."""
    token = await opaque_provider.client_credentials_token(*SERVICE_A)
    other_client = await opaque_provider.client_credentials_token("service-b", "service-b-secret")
    assert token.count(".") != 2, "the provider was meant to issue opaque tokens"
    path = unique("/deploy")

    response = await call(gate, path, token)

    assert response.status == 200
    seen = response.body["headers"]
    assert seen["x-authenticated-user"] == "service-a"
    assert seen["x-authenticated-groups"] == "deployers,services"
    assert seen["x-authenticated-issuer"] == "opaque"
    assert (await gate.wait_for_decision(path))["issuer"] == "opaque"
    # Another client's valid token is introspected as such, and the policy on client_id says no.
    assert (await call(gate, unique("/deploy"), other_client)).status == 403


async def test_one_config_serves_jwts_of_one_provider_and_opaque_tokens_of_another(
    gate: IdgateProcess,
    oidc_provider: OidcProvider,
    opaque_provider: OidcProvider,
    upstream: EchoUpstream,
) -> None:
    """A JWT of the `oidc` provider and an opaque token of the other pass the same route."""
    jwt = await oidc_provider.token_for_user("alice")
    opaque = await opaque_provider.token_for_user("bob")

    as_alice = await call(gate, "/api/items", jwt)
    as_bob = await call(gate, "/api/items", opaque)

    assert (as_alice.status, as_bob.status) == (200, 200)
    assert as_alice.body["headers"]["x-authenticated-user"] == "alice"
    assert as_bob.body["headers"]["x-authenticated-user"] == "bob"


async def test_an_answer_about_a_token_for_another_api_is_refused(
    gate: IdgateProcess, opaque_provider: OidcProvider
) -> None:
    """Active, and issued by the right provider, but to be spent at another API (`aud`)."""
    token = await opaque_provider.client_credentials_token(
        *SERVICE_A, resource="https://other.idgate.test"
    )
    path = unique("/api")

    response = await call(gate, path, token)

    assert response.status == 401
    assert (await gate.wait_for_decision(path))["token_failure"] == "audience"


async def test_a_token_revoked_at_the_provider_is_refused(
    gate: IdgateProcess, opaque_provider: OidcProvider
) -> None:
    """A token its client revoked at the provider is 401 `inactive`."""
    token = await opaque_provider.client_credentials_token(*SERVICE_A)
    await opaque_provider.revoke_token(*SERVICE_A, token)
    path = unique("/api")

    response = await call(gate, path, token)

    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert (await gate.wait_for_decision(path))["token_failure"] == "inactive"
    introspections = "idgate_token_introspections_total"
    assert await gate.metric(introspections, result="inactive", issuer="opaque") >= 1


async def test_a_made_up_opaque_token_is_refused(gate: IdgateProcess) -> None:
    """A random string the provider never issued is 401 `inactive`."""
    path = unique("/api")

    response = await call(gate, path, uuid4().hex)

    assert response.status == 401
    assert (await gate.wait_for_decision(path))["token_failure"] == "inactive"


async def test_a_route_limited_to_another_issuer_refuses_a_valid_opaque_token(
    gate: IdgateProcess, opaque_provider: OidcProvider
) -> None:
    """A route limited to `oidc` refuses the other issuer's valid opaque token."""
    token = await opaque_provider.client_credentials_token(*SERVICE_A)
    path = unique("/browser-only")

    response = await call(gate, path, token)

    assert response.status == 401
    assert (await gate.wait_for_decision(path))["token_failure"] == "issuer_not_accepted"


async def test_the_protected_resource_metadata_names_both_issuers(
    gate: IdgateProcess, oidc_provider: OidcProvider, opaque_provider: OidcProvider
) -> None:
    """RFC 9728 over HTTP: the document at the resource's well-known URL, and the route's 401
    pointing at it."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            gate.url + "/.well-known/oauth-protected-resource/api", headers={"Host": API_HOST}
        ) as response,
    ):
        assert response.status == 200
        document = await response.json()

    assert document == {
        "resource": RESOURCE,
        "authorization_servers": [oidc_provider.issuer, opaque_provider.issuer],
        "scopes_supported": ["api:read"],
        "bearer_methods_supported": ["header"],
    }
    challenge = (await call(gate, "/api/items")).headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="idgate", resource_metadata="{METADATA_URL}"'


async def test_an_unreachable_endpoint_fails_closed_for_tokens_it_has_not_vouched_for(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> None:
    """A token introspected before the outage is served from its cached answer; one never seen
    is refused (503, retry later), never let through."""
    with running_provider(tmp_path, shared=False, access_token_format="opaque") as provider:
        document = opaque_document(oidc_provider.issuer, provider.issuer, upstream.url)
        (tmp_path / "idgate").mkdir()
        with running_idgate(tmp_path / "idgate", document) as process:
            vouched = await provider.client_credentials_token(*SERVICE_A)
            unseen = await provider.client_credentials_token(*SERVICE_A)
            assert (await call(process, "/api/x", vouched)).status == 200

            provider.stop()

            assert (await call(process, "/api/x", vouched)).status == 200
            refused = await call(process, "/api/x", unseen)
            assert refused.status == 503
            assert refused.headers["Retry-After"] == "5"
            introspections = "idgate_token_introspections_total"
            assert await process.metric(introspections, result="failure", issuer="opaque") == 1
