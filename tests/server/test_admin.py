"""The admin endpoints on the metrics listener: token required, revoke, list, lift, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from pytest_aiohttp import AiohttpClient

from proxy.config.model import Secret
from proxy.server.admin import PATH, SESSIONS_PATH, AdminApi, admin_token
from proxy.server.serve import build_metrics_app
from proxy.sessions.revocation_list import RevocationList
from proxy.sessions.revocations import RevocationKind
from tests.sessions.records import record

NEW, OLD = Secret("new-session-secret-0123456789abcdef"), Secret("old-session-secret-0123456789ab")


@dataclass
class Admin:
    client: TestClient[web.Request, web.Application]
    revocations: RevocationList
    registry: CollectorRegistry
    secrets: list[Secret]
    """The configured session secrets, newest first; a test may rotate them (a reload)."""

    def headers(self, secret: Secret = NEW) -> dict[str, str]:
        return {"Authorization": f"Bearer {admin_token(secret)}"}


@pytest.fixture
async def admin(aiohttp_client: AiohttpClient) -> AsyncIterator[Admin]:
    registry = CollectorRegistry()
    revocations = RevocationList()
    secrets = [NEW, OLD]
    api = AdminApi(lambda: secrets, lambda: revocations, registry)
    client = await aiohttp_client(build_metrics_app(registry, api))
    yield Admin(client, revocations, registry, secrets)
    await revocations.close()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {admin_token(NEW)}", f"Bearer {admin_token(Secret('x'))}"],
)
async def test_an_admin_request_without_the_admin_token_is_refused(
    admin: Admin, authorization: str | None
) -> None:
    """No token, a wrong one, another scheme, another deployment's token: 401, nothing revoked."""
    headers = {} if authorization is None else {"Authorization": authorization}
    for method in ("GET", "POST", "DELETE"):
        response = await admin.client.request(
            method, PATH, json={"kind": "user", "value": "alice"}, headers=headers
        )
        assert response.status == 401
    assert len(admin.revocations.view) == 0


async def test_the_accepted_tokens_follow_the_secrets_current_at_each_request(
    admin: Admin,
) -> None:
    """A reload that rotates the session secrets changes the admin tokens at once: the new
    secret's token is accepted, a dropped secret's refused (they were fixed at start)."""
    rotated = Secret("rotated-session-secret-0123456789abcd")
    assert (await admin.client.get(PATH, headers=admin.headers(rotated))).status == 401

    admin.secrets[:] = [rotated, NEW]

    assert (await admin.client.get(PATH, headers=admin.headers(rotated))).status == 200
    assert (await admin.client.get(PATH, headers=admin.headers(NEW))).status == 200
    assert (await admin.client.get(PATH, headers=admin.headers(OLD))).status == 401


async def test_metrics_stay_open_to_scrapers_without_the_token(admin: Admin) -> None:
    """Scraping needs no token; the admin endpoints alone ask for it."""
    response = await admin.client.get("/metrics")
    assert response.status == 200
    assert "idgate_revocations_active" in await response.text()


async def test_revoke_list_and_lift_a_user(admin: Admin) -> None:
    """A revoke takes effect in the list at once, is listed, counted, and lifted on request."""
    response = await admin.client.post(
        PATH, json={"kind": "user", "value": "alice"}, headers=admin.headers()
    )
    assert response.status == 201
    entry = await response.json()
    assert (entry["kind"], entry["value"]) == ("user", "alice")
    assert entry["expires_at"] > entry["revoked_at"]
    assert admin.revocations.covers(record(created_at=entry["revoked_at"] - 1))
    listed = await (await admin.client.get(PATH, headers=admin.headers(OLD))).json()
    assert [(e["kind"], e["value"]) for e in listed["revocations"]] == [("user", "alice")]
    sample = admin.registry.get_sample_value
    assert sample("idgate_admin_revocations_total", {"action": "revoke", "kind": "user"}) == 1
    assert sample("idgate_revocations_active") == 1
    lifted = await admin.client.delete(
        PATH, json={"kind": "user", "value": "alice"}, headers=admin.headers()
    )
    assert (await lifted.json())["was_revoked"] is True
    assert not admin.revocations.covers(record(created_at=entry["revoked_at"] - 1))
    assert sample("idgate_admin_revocations_total", {"action": "lift", "kind": "user"}) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"kind": "sid", "value": "x"}',
        b'{"kind": ["user"], "value": "x"}',
        b'{"kind": "user", "value": ""}',
        b'{"kind": "user", "value": 7}',
        b'{"kind": "user"}',
        b'{"kind": "user", "value": "' + b"a" * 1025 + b'"}',
    ],
)
async def test_a_malformed_admin_request_is_400(admin: Admin, body: bytes) -> None:
    """Junk, an unknown or provider-only kind, a missing or oversized value: 400, nothing stored."""
    response = await admin.client.post(PATH, data=body, headers=admin.headers())
    assert response.status == 400
    assert len(admin.revocations.view) == 0


async def test_an_oversized_admin_body_is_refused(admin: Admin) -> None:
    """A body past MAX_BODY_BYTES is 413 before it is parsed."""
    response = await admin.client.post(PATH, data=b"x" * 10_000, headers=admin.headers())
    assert response.status == 413


async def test_a_session_revocation_names_one_session(admin: Admin) -> None:
    """`--session HANDLE` refuses that idgate session, not the user's others."""
    first = record(session_id="session-alice-1")
    await admin.client.post(
        PATH, json={"kind": "session", "value": first.handle}, headers=admin.headers()
    )
    assert admin.revocations.covers(first)
    assert not admin.revocations.covers(record(session_id="session-alice-2"))
    assert admin.revocations.view.active()[0].kind is RevocationKind.SESSION


async def test_a_session_revocation_needs_a_handle(admin: Admin) -> None:
    """A session is named by its handle: anything else (a session id, a typo) is 400."""
    for value in ("session-alice-1", record().handle[:-1], record().handle.upper()):
        response = await admin.client.post(
            PATH, json={"kind": "session", "value": value}, headers=admin.headers()
        )
        assert response.status == 400
        assert "handle" in await response.text()
    assert len(admin.revocations.view) == 0


async def test_listing_sessions_needs_the_token_a_user_and_the_redis_store(admin: Admin) -> None:
    """Without the admin token 401; without ?user= 400; with the cookie store (no index) 409
    naming what listing needs."""
    assert (await admin.client.get(SESSIONS_PATH, params={"user": "alice"})).status == 401
    assert (await admin.client.get(SESSIONS_PATH, headers=admin.headers())).status == 400
    response = await admin.client.get(
        SESSIONS_PATH, params={"user": "alice"}, headers=admin.headers()
    )
    assert response.status == 409
    assert "session.store: redis" in await response.text()
