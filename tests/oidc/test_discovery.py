"""Provider metadata: fetched from the well-known URL, refused unless it is exactly the issuer's."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from proxy.oidc.discovery import MAX_DOCUMENT_BYTES, ProviderError, fetch_metadata
from tests.support.issuer import FakeIssuer, serve_issuer


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_metadata_is_read_from_the_issuer_well_known_url(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession
) -> None:
    """The document under `{issuer}/.well-known/openid-configuration` gives the endpoints."""
    issuer = await serve_issuer(aiohttp_server, FakeIssuer(path="/realms/acme"))

    metadata = await fetch_metadata(http, issuer.url, timeout=5)

    assert metadata.issuer == issuer.url
    assert metadata.jwks_uri == issuer.url + "/jwks"
    assert metadata.authorization_endpoint == issuer.url + "/authorize"
    assert metadata.token_endpoint == issuer.url + "/token"
    assert metadata.userinfo_endpoint == issuer.url + "/userinfo"
    assert metadata.end_session_endpoint is None
    assert metadata.revocation_endpoint == issuer.url + "/revoke"
    assert metadata.raw["id_token_signing_alg_values_supported"] == ["RS256"]
    assert issuer.discovery_fetches == 1


async def test_an_issuer_with_a_trailing_slash_finds_the_same_document(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession
) -> None:
    """A trailing slash on the issuer is dropped before the well-known path is appended."""
    issuer = await serve_issuer(aiohttp_server, FakeIssuer(path="/realms/acme"))
    issuer.discovery_overrides = {"issuer": issuer.url + "/"}

    metadata = await fetch_metadata(http, issuer.url + "/", timeout=5)

    assert metadata.issuer == issuer.url + "/"


@pytest.mark.parametrize(
    "claimed",
    [
        lambda url: "https://evil.example",
        lambda url: url + "/",
        lambda url: url + "/other",
        lambda url: url[:-1],
        lambda url: url.upper(),
        lambda url: None,
        lambda url: [url],
    ],
    ids=["other", "trailing-slash", "longer", "prefix", "case", "missing", "list"],
)
async def test_a_document_naming_another_issuer_is_refused(
    aiohttp_server: AiohttpServer,
    http: aiohttp.ClientSession,
    claimed: Callable[[str], object],
) -> None:
    """The document's `issuer` must be identical to the configured one (OIDC Discovery 4.3)."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.discovery_overrides = {"issuer": claimed(issuer.url)}

    with pytest.raises(ProviderError, match="not identical"):
        await fetch_metadata(http, issuer.url, timeout=5)


@pytest.mark.parametrize("stream", [False, True], ids=["content-length", "chunked"])
async def test_an_oversized_document_is_refused(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession, stream: bool
) -> None:
    """A document over 1 MiB is refused whether or not it announces its length."""
    issuer = await serve_issuer(aiohttp_server)
    padding = " " * MAX_DOCUMENT_BYTES
    issuer.discovery_body = json.dumps({"issuer": issuer.url, "pad": padding}).encode()
    issuer.stream_discovery = stream

    with pytest.raises(ProviderError, match="more than"):
        await fetch_metadata(http, issuer.url, timeout=5)


@pytest.mark.parametrize(
    "body",
    [b"SECRET-BODY not json", b'["SECRET-BODY"]', b'"SECRET-BODY"', b"\xff\xfeSECRET-BODY"],
)
async def test_a_body_that_is_not_a_json_object_is_refused_without_quoting_it(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession, body: bytes
) -> None:
    """Invalid JSON or a non-object fails, and the error never repeats the response body."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.discovery_body = body

    with pytest.raises(ProviderError) as caught:
        await fetch_metadata(http, issuer.url, timeout=5)

    assert "SECRET-BODY" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"jwks_uri": None},
        {"jwks_uri": "file:///etc/passwd"},
        {"jwks_uri": "https://"},
        {"jwks_uri": 42},
        {"token_endpoint": "javascript:alert(1)"},
        {"revocation_endpoint": "ftp://revoke.example.com/"},
    ],
)
async def test_a_document_without_usable_endpoints_is_refused(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession, overrides: dict[str, object]
) -> None:
    """`jwks_uri` is required and every endpoint given must be an http(s) URL."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.discovery_overrides = overrides

    with pytest.raises(ProviderError):
        await fetch_metadata(http, issuer.url, timeout=5)


async def test_an_error_status_is_refused_without_quoting_the_body(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession
) -> None:
    """A 503 from the provider is a ProviderError naming the status, not the body."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.down = True

    with pytest.raises(ProviderError, match="HTTP 503") as caught:
        await fetch_metadata(http, issuer.url, timeout=5)

    assert "provider-down-body" not in str(caught.value)


async def test_an_unreachable_provider_is_a_provider_error(http: aiohttp.ClientSession) -> None:
    """A refused connection surfaces as ProviderError, not as an aiohttp exception."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with pytest.raises(ProviderError, match="unreachable"):
            await fetch_metadata(http, f"http://127.0.0.1:{port}", timeout=5)


async def test_a_provider_that_does_not_answer_in_time_is_a_provider_error(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession
) -> None:
    """The timeout bounds the whole fetch and surfaces as ProviderError."""
    issuer = await serve_issuer(aiohttp_server)
    issuer.hang = asyncio.Event()
    try:
        with pytest.raises(ProviderError, match="did not answer"):
            await fetch_metadata(http, issuer.url, timeout=0.05)
    finally:
        issuer.hang.set()


async def test_raw_metadata_is_read_only(
    aiohttp_server: AiohttpServer, http: aiohttp.ClientSession
) -> None:
    """Nobody holding the metadata can change what other holders see."""
    issuer = await serve_issuer(aiohttp_server)
    metadata = await fetch_metadata(http, issuer.url, timeout=5)

    with pytest.raises(TypeError):
        metadata.raw["jwks_uri"] = "https://evil.example/jwks"  # type: ignore[index]
