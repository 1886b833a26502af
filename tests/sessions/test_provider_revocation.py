"""Sign-out's revocation of the session tokens: both at once, every outcome counted, none fatal."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from proxy.config.model import OIDCSettings
from proxy.observability.metrics import Metrics
from proxy.oidc.discovery import fetch_metadata
from proxy.oidc.flow import CodeFlow
from proxy.sessions.provider_revocation import revoke_session_tokens
from tests.sessions.records import ACCESS_TOKEN, REFRESH_TOKEN, record
from tests.support.issuer import FakeIssuer, SigningKey, serve_issuer

REVOCATIONS = "idgate_token_revocations_total"
#: Long enough that one timeout is told apart from two in a row on a busy machine.
TIMEOUT = 1.0


@dataclasses.dataclass
class Provider:
    issuer: FakeIssuer
    flow: CodeFlow
    metrics: Metrics

    def count(self, result: str) -> float:
        return self.metrics.registry.get_sample_value(REVOCATIONS, {"result": result}) or 0.0


MakeProvider = Callable[..., Awaitable[Provider]]


@pytest.fixture
async def provider(aiohttp_server: AiohttpServer) -> AsyncIterator[MakeProvider]:
    """A fake provider and a CodeFlow for it with a TIMEOUT http timeout."""
    async with aiohttp.ClientSession() as http:

        async def make(**issuer_fields: Any) -> Provider:
            served = await serve_issuer(
                aiohttp_server, FakeIssuer(keys=[SigningKey(kid="k1")], **issuer_fields)
            )
            oidc = OIDCSettings(
                issuer=served.url, client_id=served.client_id, http_timeout_seconds=TIMEOUT
            )
            metadata = await fetch_metadata(http, served.url, timeout=2.0)
            return Provider(served, CodeFlow(oidc, metadata, http), Metrics(CollectorRegistry()))

        yield make


async def test_both_tokens_are_revoked_and_counted(provider: MakeProvider) -> None:
    """The refresh and the access token each go to the revocation endpoint with their type hint,
    and each is counted as revoked."""
    p = await provider()

    await revoke_session_tokens(p.flow, record(), metrics=p.metrics)

    sent = {(each["token"], each["token_type_hint"]) for each in p.issuer.revocation_requests}
    assert sent == {(REFRESH_TOKEN, "refresh_token"), (ACCESS_TOKEN, "access_token")}
    assert p.count("revoked") == 2


async def test_a_session_without_tokens_revokes_nothing(provider: MakeProvider) -> None:
    """A session that holds neither token sends nothing and counts nothing."""
    p = await provider()
    bare = dataclasses.replace(record(), refresh_token=None, access_token=None)

    await revoke_session_tokens(p.flow, bare, metrics=p.metrics)

    assert p.issuer.revocation_requests == []
    assert p.count("revoked") == p.count("unsupported") == 0


async def test_a_provider_without_the_endpoint_is_counted_as_unsupported(
    provider: MakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a revocation_endpoint nothing is sent, nothing is logged, and each token is
    counted as unsupported (the operator sees that sign-out cannot revoke there)."""
    p = await provider(offer_revocation=False)

    with caplog.at_level(logging.WARNING):
        await revoke_session_tokens(p.flow, record(), metrics=p.metrics)

    assert p.count("unsupported") == 2
    assert caplog.records == []


@pytest.mark.parametrize(
    ("status", "body", "result"),
    [
        (503, b'{"error": "temporarily_unavailable"}', "unavailable"),
        (400, b'{"error": "invalid_client"}', "refused"),
        (400, b"not json", "refused"),
    ],
)
async def test_a_failing_revocation_is_logged_and_counted_without_the_token(
    provider: MakeProvider,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    result: str,
) -> None:
    """An error answer does not raise: each token is counted by result and logged by its kind,
    and no log line holds a token."""
    p = await provider(revocation_status=status, revocation_body=body)

    with caplog.at_level(logging.WARNING):
        await revoke_session_tokens(p.flow, record(), metrics=p.metrics)

    assert p.count(result) == 2
    assert p.count("revoked") == 0
    assert len(caplog.records) == 2
    assert all(REFRESH_TOKEN not in line and ACCESS_TOKEN not in line for line in caplog.messages)
    assert {"refresh_token", "access_token"} <= {
        word for line in caplog.messages for word in line.split()
    }


async def test_a_silent_provider_delays_by_one_timeout_for_both_tokens(
    provider: MakeProvider,
) -> None:
    """Against a revocation endpoint that never answers, both tokens give up together after one
    http timeout (not one after the other), counted as unavailable."""
    p = await provider(revocation_hang=asyncio.Event())
    assert p.issuer.revocation_hang is not None

    started = time.monotonic()
    try:
        await revoke_session_tokens(p.flow, record(), metrics=p.metrics)
    finally:
        p.issuer.revocation_hang.set()
    elapsed = time.monotonic() - started

    assert 0.9 * TIMEOUT <= elapsed < 2 * TIMEOUT
    assert p.count("unavailable") == 2


async def test_without_provider_metadata_the_tokens_are_counted_unavailable(
    provider: MakeProvider,
) -> None:
    """With no flow (the provider's metadata never loaded), each token counts as unavailable."""
    p = await provider()

    await revoke_session_tokens(None, record(), metrics=p.metrics)

    assert p.count("unavailable") == 2
    assert p.issuer.revocation_requests == []
