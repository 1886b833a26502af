"""The introspection client: RFC 7662's request with client_secret_basic; anything but a usable
answer is ProviderUnavailable, and the token never appears in what is logged."""

from __future__ import annotations

import base64
import logging
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from proxy.config.model import IntrospectionSettings, Secret
from proxy.errors import ProviderUnavailable
from proxy.observability.metrics import Metrics
from proxy.oidc.discovery import ProviderMetadata
from proxy.oidc.introspection import IntrospectionClient

TOKEN = "opaque-token-value"


class Endpoint:
    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {"active": True, "sub": "service-a"}
        self.requests: list[tuple[str | None, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(
            (request.headers.get("Authorization"), {k: str(v) for k, v in form.items()})
        )
        return web.json_response(self.body, status=self.status)


@pytest.fixture
async def endpoint(aiohttp_server: AiohttpServer) -> tuple[Endpoint, str]:
    fake = Endpoint()
    app = web.Application()
    app.router.add_post("/introspect", fake.handle)
    server = await aiohttp_server(app)
    return fake, str(server.make_url("/introspect"))


def client(
    http: aiohttp.ClientSession,
    *,
    endpoint: str | None,
    metadata: ProviderMetadata | None = None,
    client_id: str = "idgate",
    metrics: Metrics | None = None,
) -> IntrospectionClient:
    settings = IntrospectionSettings(
        client_id=client_id, client_secret=Secret("s3cret:+/"), endpoint=endpoint
    )
    return IntrospectionClient(
        http,
        settings,
        metrics or Metrics(CollectorRegistry()),
        issuer="partner",
        discovered=lambda: metadata,
        timeout=5,
    )


def introspections(registry: CollectorRegistry, result: str) -> float:
    labels = {"result": result, "issuer": "partner"}
    return registry.get_sample_value("idgate_token_introspections_total", labels) or 0.0


async def test_the_token_is_posted_with_client_secret_basic(
    endpoint: tuple[Endpoint, str],
) -> None:
    """The token goes in an RFC 7662 form POST, authenticated with form-encoded
    client_secret_basic."""
    fake, url = endpoint
    registry = CollectorRegistry()
    async with aiohttp.ClientSession() as http:
        answer = await client(
            http, endpoint=url, client_id="idgate api", metrics=Metrics(registry)
        ).introspect(TOKEN)

    assert answer == {"active": True, "sub": "service-a"}
    assert introspections(registry, "active") == 1
    [(authorization, form)] = fake.requests
    assert form == {"token": TOKEN, "token_type_hint": "access_token"}
    assert authorization is not None
    # RFC 6749 2.3.1: both parts form-urlencoded before Basic.
    assert base64.b64decode(authorization.removeprefix("Basic ")) == b"idgate+api:s3cret%3A%2B%2F"


async def test_the_discovered_endpoint_is_used_when_none_is_configured(
    endpoint: tuple[Endpoint, str],
) -> None:
    """Without `endpoint`, discovery's `introspection_endpoint` is asked."""
    fake, url = endpoint
    metadata = ProviderMetadata.parse(
        {"issuer": "https://id", "jwks_uri": "https://id/jwks", "introspection_endpoint": url},
        issuer="https://id",
    )
    async with aiohttp.ClientSession() as http:
        await client(http, endpoint=None, metadata=metadata).introspect(TOKEN)

    assert len(fake.requests) == 1


async def test_without_metadata_or_a_discovered_endpoint_it_fails_closed() -> None:
    """Before discovery is loaded, or when it names no endpoint, no token can be checked."""
    metadata = ProviderMetadata.parse(
        {"issuer": "https://id", "jwks_uri": "https://id/jwks"}, issuer="https://id"
    )
    async with aiohttp.ClientSession() as http:
        for known in (None, metadata):
            with pytest.raises(ProviderUnavailable):
                await client(http, endpoint=None, metadata=known).introspect(TOKEN)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": "invalid_client"}),
        (500, {"active": True}),
        (200, {"sub": "no active"}),
        (200, {"active": "true"}),
        (200, ["active"]),
    ],
)
async def test_no_usable_answer_fails_closed_without_logging_the_token(
    endpoint: tuple[Endpoint, str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: Any,
) -> None:
    """An error status or an answer without a boolean `active` is 503, logged without the token."""
    fake, url = endpoint
    fake.status, fake.body = status, body
    caplog.set_level(logging.DEBUG)
    registry = CollectorRegistry()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ProviderUnavailable):
            await client(http, endpoint=url, metrics=Metrics(registry)).introspect(TOKEN)

    assert introspections(registry, "failure") == 1
    assert "introspection failed" in caplog.text
    assert TOKEN not in caplog.text


async def test_an_unreachable_endpoint_fails_closed() -> None:
    """A refused connection is 503, never an identity."""
    # A bound socket that never listens: connections to it are refused.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        async with aiohttp.ClientSession() as http:
            with pytest.raises(ProviderUnavailable):
                await client(http, endpoint=f"http://127.0.0.1:{port}/x").introspect(TOKEN)
