"""Reload: which keys a new config applies at once and which wait for the next restart."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpServer

from proxy.runtime import RUNTIME_KEY
from proxy.server.app import build_app
from proxy.server.reload import reload_config
from tests.support.context import NO_PROVIDER
from tests.support.settings import SESSION_SECRET, make_settings

CONFIG = f"""
listen: "127.0.0.1:0"
public_url: https://idgate.test
oidc: {{issuer: "{NO_PROVIDER}", client_id: idgate}}
session: {{secret: {SESSION_SECRET}}}
routes:
  - {{name: public, path: /, upstream: "{NO_PROVIDER}", public: true}}
server:
  keepalive_timeout: 90s
  max_connections: 10
  max_request_head_bytes: 32768
  body_idle_timeout: 7s
upstream:
  max_response_headers: 50
"""


async def test_connection_level_server_keys_wait_for_a_restart_and_the_rest_apply_at_once(
    aiohttp_server: AiohttpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """keepalive_timeout and max_connections shape the listener: the reload says they change at
    the next restart; per-request limits (head bytes, body idle, upstream) apply at once."""
    app = build_app(make_settings(NO_PROVIDER, NO_PROVIDER), registry=CollectorRegistry())
    await aiohttp_server(app)
    path = tmp_path / "idgate.yaml"
    path.write_text(CONFIG)

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
