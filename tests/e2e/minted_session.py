"""A browser's session without a browser: a record saved through idgate's own store and config,
as bench/session_cookie.py does, for tests that need a session but not a sign-in."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from types import MappingProxyType

from proxy.config.load import load_settings
from proxy.runtime import build_store
from proxy.sessions.cookies import CookieJar
from proxy.sessions.model import SessionRecord
from tests.e2e.idgate_process import SECRET_ENVIRONMENT


async def mint_session(config: Path, subject: str) -> str:
    """The Cookie header of a fresh session of `subject` (group `staff`) in the store `config`
    names; its refresh is not due for `refresh_interval`, so no provider is asked."""
    settings = load_settings(config, SECRET_ENVIRONMENT)
    now = time.time()
    record = SessionRecord(
        session_id=secrets.token_urlsafe(24),
        subject=subject,
        provider_sid=secrets.token_hex(16),
        user=subject,
        email=f"{subject}@example.com",
        groups=frozenset({"staff"}),
        claims=MappingProxyType({"sub": subject, "email": f"{subject}@example.com"}),
        id_token="unused-id-token",
        access_token="unused-access-token",
        refresh_token="unused-refresh-token",
        created_at=now,
        last_seen_at=now,
        verified_at=now,
    )
    store = build_store(settings, CookieJar.from_settings(settings))
    try:
        changes = await store.save(record, {}, max_age=settings.session.lifetime_seconds)
    finally:
        await store.close()
    return "; ".join(f"{change.name}={change.value}" for change in changes if change.value)
