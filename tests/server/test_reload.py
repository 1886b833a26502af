"""Reload: a new configuration replaces the runtime whole, or the old one keeps serving."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient, AiohttpServer

from proxy.config.load import load_settings
from proxy.runtime import RUNTIME_KEY
from proxy.server import reload as reload_module
from proxy.server.app import build_app
from proxy.server.reload import reload_config
from proxy.sessions.revocations import RevocationKind
from tests.support.context import NO_PROVIDER
from tests.support.settings import make_settings

SECRET = "0123456789abcdef0123456789abcdef"


def document(route_name: str = "app") -> dict[str, Any]:
    return {
        "public_url": "https://idgate.example.com",
        "oidc": {
            "issuer": NO_PROVIDER,
            "client_id": "idgate",
            "audiences": ["https://api.example.com"],
        },
        "session": {"secret": SECRET},
        "routes": [{"name": route_name, "upstream": NO_PROVIDER, "public": True}],
    }


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def reloads(registry: CollectorRegistry, result: str) -> float:
    return registry.get_sample_value("idgate_config_reloads_total", {"result": result}) or 0.0


@pytest.fixture
async def served(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> tuple[TestClient[web.Request, web.Application], CollectorRegistry, Path]:
    path = write(tmp_path / "idgate.yaml", document())
    registry = CollectorRegistry()
    client = await aiohttp_client(build_app(load_settings(path, {}), registry=registry))
    return client, registry, path


async def test_a_valid_config_replaces_the_runtime(
    served: tuple[TestClient[web.Request, web.Application], CollectorRegistry, Path],
) -> None:
    """A reload of a valid file swaps in a runtime built from it and counts a success."""
    client, registry, path = served
    write(path, document(route_name="renamed"))

    assert await reload_config(client.app, path, {})

    assert [route.name for route in client.app[RUNTIME_KEY].current.settings.routes] == ["renamed"]
    assert reloads(registry, "success") == 1


async def test_a_config_error_keeps_the_old_runtime(
    served: tuple[TestClient[web.Request, web.Application], CollectorRegistry, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A file with an issue is refused: the old runtime serves on, the issue is logged by its
    key path, and the failure is counted."""
    client, registry, path = served
    old = client.app[RUNTIME_KEY].current
    broken = document()
    broken["routes"][0]["upstream"] = "not a url"
    write(path, broken)

    with caplog.at_level(logging.ERROR, logger="idgate.config"):
        assert not await reload_config(client.app, path, {})

    assert client.app[RUNTIME_KEY].current is old
    assert "routes[0].upstream" in caplog.text
    assert reloads(registry, "failure") == 1
    assert (await client.get("/healthz")).status == 200


async def test_a_runtime_that_fails_to_build_keeps_the_old_one(
    served: tuple[TestClient[web.Request, web.Application], CollectorRegistry, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A valid file whose runtime cannot be built is refused like a config error: logged,
    counted, and the old runtime keeps serving (it used to die silently in its task)."""
    client, registry, path = served
    old = client.app[RUNTIME_KEY].current
    write(path, document(route_name="renamed"))

    async def broken_build(*args: object, **kwargs: object) -> None:
        raise OSError("cannot build")

    monkeypatch.setattr(reload_module, "build_runtime", broken_build)
    with caplog.at_level(logging.ERROR, logger="idgate.config"):
        assert not await reload_config(client.app, path, {})

    assert client.app[RUNTIME_KEY].current is old
    assert "building the new configuration" in caplog.text
    assert reloads(registry, "failure") == 1


async def test_connection_level_server_keys_wait_for_a_restart_and_the_rest_apply_at_once(
    aiohttp_server: AiohttpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """keepalive_timeout and max_connections shape the listener: the reload says they change at
    the next restart; per-request limits (head bytes, body idle, upstream) apply at once."""
    app = build_app(make_settings(NO_PROVIDER, NO_PROVIDER), registry=CollectorRegistry())
    await aiohttp_server(app)
    limits = {
        "server": {
            "keepalive_timeout": "90s",
            "max_connections": 10,
            "max_request_head_bytes": 32768,
            "body_idle_timeout": "7s",
        },
        "upstream": {"max_response_headers": 50},
    }
    path = write(tmp_path / "idgate.yaml", document() | limits)

    with caplog.at_level(logging.WARNING, logger="idgate.config"):
        assert await reload_config(app, path, {})

    [warning] = [record.getMessage() for record in caplog.records if "restart" in record.message]
    assert "server.keepalive_timeout" in warning
    assert "server.max_connections" in warning
    assert "server.request_head_timeout" not in warning
    assert "max_request_head_bytes" not in warning
    settings = app[RUNTIME_KEY].current.settings
    assert settings.server.max_request_head_bytes == 32768
    assert settings.server.body_idle_timeout_seconds == 7
    assert settings.upstream.max_response_headers == 50


async def test_a_reload_that_rotates_the_session_secret_keeps_the_revocations_in_force(
    served: tuple[TestClient[web.Request, web.Application], CollectorRegistry, Path],
) -> None:
    """One process keeps its revocation list in memory; a reload that changes the session
    settings builds a new list, which takes over what was revoked (it used to start empty)."""
    client, _, path = served
    await client.app[RUNTIME_KEY].current.revocations.revoke(RevocationKind.USER, "alice")
    rotated = document()
    rotated["session"] = {"secret": ["rotated-secret-0123456789abcdef0123", SECRET]}
    write(path, rotated)

    assert await reload_config(client.app, path, {})

    new = client.app[RUNTIME_KEY].current
    assert new.settings.session.secrets[0].reveal().startswith("rotated")
    assert new.revocations.covers_token(user="alice", issued_at=time.time() - 1)
