"""An idgate app in front of an echo upstream, with an in-process issuer that signs test tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient, AiohttpServer

from proxy.config.model import Settings
from proxy.server.app import build_app
from tests.support.issuer import FakeIssuer, SigningKey, serve_issuer
from tests.support.settings import AUDIENCE, make_settings
from tests.support.upstream import EchoUpstream, serve_echo


@dataclass(kw_only=True)
class Gate:
    client: TestClient[Any, Any]
    issuer: FakeIssuer
    upstream: EchoUpstream
    registry: CollectorRegistry
    settings: Settings

    def token(self, sub: str = "alice", **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer.url,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return self.issuer.keys[0].sign(payload)

    def bearer(self, sub: str = "alice", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, **claims)}"}

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def open_gate(
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    *,
    issuer: FakeIssuer | None = None,
    **overrides: Any,
) -> Gate:
    issuer = await serve_issuer(aiohttp_server, issuer or FakeIssuer(keys=[SigningKey(kid="k1")]))
    upstream = await serve_echo(aiohttp_server)
    settings = make_settings(issuer.url, upstream.url, **overrides)
    registry = CollectorRegistry()
    client = await aiohttp_client(build_app(settings, registry=registry))
    return Gate(
        client=client, issuer=issuer, upstream=upstream, registry=registry, settings=settings
    )


class StartGate(Protocol):
    """The `start_gate` fixture: an idgate app whose settings differ from the standard ones by
    `overrides` (make_settings keys), with its own issuer unless one is given."""

    async def __call__(self, *, issuer: FakeIssuer | None = None, **overrides: Any) -> Gate: ...
