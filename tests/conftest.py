"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient, AiohttpServer

from proxy.runtime import Runtime
from tests.support.context import started_runtime
from tests.support.gate import Gate, StartGate, open_gate
from tests.support.issuer import FakeIssuer
from tests.support.kubernetes_api import StandInApiServer, serve_api_server


@pytest.fixture(autouse=True)
def _no_idgate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own IDGATE_* variables must never change what a test sees."""
    for name in [
        name for name in os.environ if name.startswith("IDGATE_") and name != "IDGATE_E2E"
    ]:
        monkeypatch.delenv(name)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    """A started Runtime for the standard test settings (no provider reachable)."""
    async with started_runtime() as built:
        yield built


@pytest.fixture
def start_gate(aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient) -> StartGate:
    async def start(*, issuer: FakeIssuer | None = None, **overrides: Any) -> Gate:
        return await open_gate(aiohttp_server, aiohttp_client, issuer=issuer, **overrides)

    return start


@pytest.fixture
async def gate(start_gate: StartGate) -> Gate:
    """idgate with the standard test settings in front of an echo upstream."""
    return await start_gate()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[StandInApiServer]:
    """A stand-in Kubernetes API server (tests/support/kubernetes_api.py): no cluster runs here."""
    async with serve_api_server(tmp_path) as server:
        yield server
