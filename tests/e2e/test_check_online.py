"""`idgate check --online` against the real provider and a real Redis: one line per check, exit
1 when any check fails, and the line naming what to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import SECRET_ENVIRONMENT, base_document
from tests.e2e.redis_fixture import RedisServer

#: Registered at the provider, never listened on: the check never completes a sign-in.
PUBLIC_URL: Final = "http://127.0.0.1:9"
ROUTES: Final = [
    {"name": "app", "path": "/", "upstream": "http://127.0.0.1:9", "allow": {"authenticated": True}}
]


@pytest.fixture
async def provider(module_oidc_provider: OidcProvider) -> OidcProvider:
    await module_oidc_provider.configure_web_client(redirect_uris=[f"{PUBLIC_URL}/oauth2/callback"])
    return module_oidc_provider


def check_online(
    tmp_path: Path,
    provider: OidcProvider,
    *,
    environment: dict[str, str] | None = None,
    **changes: Any,
) -> tuple[int, list[str], str]:
    """Exit status, stdout lines and stderr of `idgate check --online` on the e2e config with
    `changes` merged into its top level (a dict value into that section)."""
    document = base_document(provider.issuer, ROUTES) | {"public_url": PUBLIC_URL}
    for key, value in changes.items():
        document[key] = document[key] | value if isinstance(value, dict) else value
    config = tmp_path / "idgate.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "check", "--online", "-c", str(config)],
        env=SECRET_ENVIRONMENT | (environment or {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.splitlines(), done.stderr


def line(lines: list[str], subject: str) -> str:
    [found] = [each for each in lines if each.split(maxsplit=1)[1].startswith(f"{subject}:")]
    return found


def test_a_good_config_passes_every_check(provider: OidcProvider, tmp_path: Path) -> None:
    """Discovery, keys, client credentials and redirect URI all pass: exit 0."""
    status, lines, stderr = check_online(tmp_path, provider)

    assert status == 0, (lines, stderr)
    assert lines[0].endswith(": ok (1 routes)")
    assert [each.split()[0] for each in lines[1:]] == ["ok"] * 4, lines
    assert "issuer matches exactly" in line(lines, "discovery")
    assert "usable for" in line(lines, "keys")
    assert "invalid_grant" in line(lines, "client")


def test_a_wrong_client_secret_is_reported_as_invalid_client(
    provider: OidcProvider, tmp_path: Path
) -> None:
    """The provider refuses the client: the client line fails naming the keys, exit 1."""
    status, lines, stderr = check_online(
        tmp_path, provider, environment={"IDGATE_CLIENT_SECRET": "not-the-secret"}
    )

    assert status == 1
    client = line(lines, "client")
    assert client.startswith("FAIL")
    assert "invalid_client" in client
    assert "oidc.client_secret" in client
    assert "not-the-secret" not in "".join(lines) + stderr
    assert "1 of 4 checks failed" in stderr
    assert line(lines, "redirect URI").startswith("skip")


def test_a_wrong_issuer_fails_discovery(provider: OidcProvider, tmp_path: Path) -> None:
    """An issuer that is not exactly the provider's (here a trailing slash) fails discovery; the
    checks that need it are skipped, not passed."""
    status, lines, _ = check_online(tmp_path, provider, oidc={"issuer": provider.issuer + "/"})

    assert status == 1
    assert line(lines, "discovery").startswith("FAIL")
    assert "not identical to the configured" in line(lines, "discovery")
    assert line(lines, "client").startswith("skip")


def test_an_unregistered_redirect_uri_is_reported(provider: OidcProvider, tmp_path: Path) -> None:
    """A public_url whose callback the provider does not know fails the redirect URI line."""
    status, lines, _ = check_online(tmp_path, provider, public_url="http://127.0.0.1:10")

    assert status == 1
    redirect = line(lines, "redirect URI")
    assert redirect.startswith("FAIL")
    assert "register http://127.0.0.1:10/oauth2/callback" in redirect


def test_redis_is_pinged_when_it_stores_the_sessions(
    provider: OidcProvider, redis_server: RedisServer, tmp_path: Path
) -> None:
    """A reachable Redis passes; once it is stopped, the redis line fails."""
    session = {"store": "redis", "redis_url": redis_server.url.reveal()}

    status, lines, _ = check_online(tmp_path, provider, session=session)
    assert status == 0, lines
    assert line(lines, "redis").startswith("ok")

    redis_server.stop()
    status, lines, _ = check_online(tmp_path, provider, session=session)
    assert status == 1
    assert line(lines, "redis").startswith("FAIL")
