"""SessionRecord builders shared by the session store tests."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from proxy.sessions.model import SessionRecord

CREATED_AT = 1_700_000_000.0
ACCESS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.access-token-of-alice.c2lnbmF0dXJl"
REFRESH_TOKEN = "refresh-token-of-alice-0123456789"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.id-token-of-alice.c2lnbmF0dXJl"


def record(
    *,
    session_id: str = "session-alice-1",
    subject: str = "alice-sub",
    provider_sid: str | None = "provider-sid-1",
    created_at: float = CREATED_AT,
    claims: dict[str, Any] | None = None,
) -> SessionRecord:
    """Alice's session as the callback would create it; each argument varies one login."""
    return SessionRecord(
        session_id=session_id,
        subject=subject,
        provider_sid=provider_sid,
        user="alice",
        email="alice@example.com",
        groups=frozenset({"dev", "admins"}),
        claims=MappingProxyType(claims or {"name": "Alice Liddell", "groups": ["dev", "admins"]}),
        id_token=ID_TOKEN,
        access_token=ACCESS_TOKEN,
        refresh_token=REFRESH_TOKEN,
        created_at=created_at,
        last_seen_at=created_at,
        verified_at=created_at,
    )
