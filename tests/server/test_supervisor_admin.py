"""The supervisor's admin state: it follows a reload as the workers do, or keeps what it has."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.config.load import load_settings
from proxy.config.model import Secret
from proxy.server.supervisor_admin import SupervisorAdmin, open_admin_state
from proxy.sessions.revocation_log import ENV
from proxy.sessions.revocations import RevocationKind
from tests.server.test_reload import SECRET, document, write

ROTATED = "rotated-session-secret-0123456789abcd"


@pytest.fixture
async def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SupervisorAdmin]:
    """A supervisor's admin state on the host's revocation file, alice revoked."""
    monkeypatch.setenv(ENV, str(tmp_path / "revocations.log"))
    path = write(tmp_path / "idgate.yaml", document())
    admin = SupervisorAdmin(await open_admin_state(load_settings(path, {})))
    await admin.revocations().revoke(RevocationKind.USER, "alice")
    yield admin
    await admin.close()


def alice_revoked(admin: SupervisorAdmin) -> bool:
    return admin.revocations().covers_token(user="alice", issued_at=time.time() - 1)


async def test_a_reload_rotating_the_secrets_changes_the_admin_secrets_and_keeps_the_list(
    admin: SupervisorAdmin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The admin token follows the new first secret; the list on the same file stays in force."""
    rotated = document()
    rotated["session"] = {"secret": [ROTATED, SECRET]}
    path = write(tmp_path / "idgate.yaml", rotated)

    with caplog.at_level(logging.INFO, logger="idgate.config"):
        await admin.reload(path, {})

    assert admin.secrets() == (Secret(ROTATED), Secret(SECRET))
    assert alice_revoked(admin)
    assert "admin endpoints reloaded" in caplog.text


async def test_a_config_with_issues_keeps_the_admin_state(
    admin: SupervisorAdmin, tmp_path: Path
) -> None:
    """As a worker keeps its runtime, the supervisor keeps its secrets and list."""
    before = admin.current
    broken = document()
    broken["session"] = {"secret": "short"}
    await admin.reload(write(tmp_path / "idgate.yaml", broken), {})

    assert admin.current is before


async def test_a_list_moved_where_it_cannot_be_written_keeps_the_old_one(
    admin: SupervisorAdmin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload adding a `session.redis` that cannot be reached would lose the revocations in
    force: the supervisor keeps its state and says why, naming the key."""
    before = admin.current
    moved = document()
    moved["session"] |= {"redis": {"url": f"unix://{tmp_path}/no-such-redis.sock"}}

    with caplog.at_level(logging.ERROR, logger="idgate.config"):
        await admin.reload(write(tmp_path / "idgate.yaml", moved), {})

    assert admin.current is before
    assert alice_revoked(admin)
    assert "admin endpoints keep the previous configuration: session.redis:" in caplog.text
