"""RFC 9728 through HTTP: a route's protected-resource document at its well-known URL, and the
`resource_metadata` parameter on that route's 401 challenges (and only that route's)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pytest_aiohttp import AiohttpServer

from proxy.config.model import IssuerSettings, Policy, ResourceMetadata, Route, Rule
from proxy.endpoints.resource_metadata import authorization_servers
from tests.support.gate import Gate, StartGate
from tests.support.upstream import serve_echo

API = "https://api.example.com/v1"
METADATA_URL = "https://api.example.com/.well-known/oauth-protected-resource/v1"
ANYONE = Policy(allow=Rule(authenticated=True))
API_HOST = {"Host": "api.example.com"}


@pytest.fixture
async def gate(aiohttp_server: AiohttpServer, start_gate: StartGate) -> Gate:
    upstream = await serve_echo(aiohttp_server)
    metadata = ResourceMetadata(
        resource=API, scopes_supported=("api:read", "api:write"), resource_name="Example API"
    )
    routes = (
        Route(
            name="api",
            path="/v1",
            upstream=upstream.url,
            policy=ANYONE,
            resource_metadata=metadata,
        ),
        Route(name="home", path="/", upstream=upstream.url, policy=ANYONE),
    )
    return await start_gate(routes=routes)


async def test_the_document_is_served_at_the_resource_well_known_url(gate: Gate) -> None:
    """The document is at the resource's host, the well-known string followed by its path, with the
    RFC 9728 members."""
    response = await gate.client.get("/.well-known/oauth-protected-resource/v1", headers=API_HOST)

    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {
        "resource": API,
        "authorization_servers": [gate.issuer.url],
        "scopes_supported": ["api:read", "api:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Example API",
    }


async def test_other_hosts_and_paths_go_on_to_the_routes(gate: Gate) -> None:
    """No document is invented for another host or resource: the request is an ordinary one
    (here the catch-all route's 401), so an upstream's own document stays reachable."""
    for host, path in (
        ("other.example.com", "/.well-known/oauth-protected-resource/v1"),
        ("api.example.com", "/.well-known/oauth-protected-resource"),
        ("api.example.com", "/.well-known/oauth-protected-resource/v2"),
    ):
        response = await gate.client.get(path, headers={"Host": host})
        assert response.status == 401, (host, path)
        assert "resource_metadata" not in response.headers["WWW-Authenticate"]


async def test_the_document_is_only_read(gate: Gate) -> None:
    """Anything but GET and HEAD on the document is 405."""
    response = await gate.client.post("/.well-known/oauth-protected-resource/v1", headers=API_HOST)

    assert response.status == 405


async def test_the_routes_401_points_clients_at_the_document(gate: Gate) -> None:
    """A request without a token gets a challenge naming the document."""
    response = await gate.client.get("/v1/items", headers=API_HOST)

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="idgate", resource_metadata="{METADATA_URL}"'
    )


async def test_an_invalid_token_keeps_its_error_code_beside_the_metadata_url(gate: Gate) -> None:
    """A refused token's challenge carries both `error` and `resource_metadata`."""
    response = await gate.client.get(
        "/v1/items", headers={**API_HOST, "Authorization": "Bearer not.a.token"}
    )

    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="idgate", error="invalid_token", resource_metadata="{METADATA_URL}"'
    )


async def test_a_route_without_metadata_challenges_as_before(gate: Gate) -> None:
    """A route that publishes nothing keeps the plain challenge."""
    response = await gate.client.get("/elsewhere", headers=API_HOST)

    assert response.headers["WWW-Authenticate"] == 'Bearer realm="idgate"'


async def test_a_valid_token_is_let_through_as_before(gate: Gate) -> None:
    """Publishing metadata changes nothing for a valid token."""
    response = await gate.client.get("/v1/items", headers={**API_HOST, **gate.bearer()})

    assert response.status == 200


def test_authorization_servers_are_the_oauth_issuers_the_routes_accept(gate: Gate) -> None:
    """A route's `issuers` narrows the list; issuers without audiences (the sign-in provider
    for sessions only) grant no tokens for an API and are left out."""
    partner = IssuerSettings(name="partner", issuer="https://partner.example.com", audiences=(API,))
    other = IssuerSettings(name="other", issuer="https://other.example.com", audiences=(API,))
    sessions_only = replace(gate.settings.oidc, audiences=())
    settings = replace(gate.settings, oidc=sessions_only, issuers=(partner, other))
    api = gate.settings.routes[0]

    assert authorization_servers([api], settings) == [partner.issuer, other.issuer]
    limited = replace(api, issuers=frozenset({"other", "oidc"}))
    assert authorization_servers([limited], settings) == [other.issuer]
