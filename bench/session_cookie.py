"""A browser's idgate session cookie, sealed by idgate's own code with the running config.

What a real sign-in leaves in the cookie: the user, groups, claims and the provider's ID, access
and refresh tokens. It is minted just before each run that uses it, so no refresh (which would
need a provider) falls due while the clock runs.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from types import MappingProxyType

from bench.idgate import SECRET_VARIABLE
from bench.tokens import GROUP, Issuer
from proxy.config.load import load_settings
from proxy.runtime import build_store
from proxy.sessions.cookies import CookieJar
from proxy.sessions.model import SessionRecord


def cookie_header(config: Path, *, secret: str, issuer: Issuer, subject: str) -> str:
    """The `Cookie` header value of a fresh session for `subject` (in GROUP)."""
    settings = load_settings(config, {SECRET_VARIABLE: secret})
    jar = CookieJar.from_settings(settings)
    now = time.time()
    claims = {"sub": subject, "email": f"{subject}@example.com", "groups": [GROUP]}
    record = SessionRecord(
        session_id=secrets.token_urlsafe(24),
        subject=subject,
        provider_sid=secrets.token_hex(16),
        user=subject,
        email=f"{subject}@example.com",
        groups=frozenset({GROUP}),
        claims=MappingProxyType(claims),
        id_token=issuer.token(subject, aud="idgate", nonce=secrets.token_urlsafe(16)),
        access_token=issuer.token(subject),
        refresh_token=secrets.token_urlsafe(48),
        created_at=now,
        last_seen_at=now,
        verified_at=now,
    )
    max_age = settings.session.lifetime_seconds
    changes = asyncio.run(build_store(settings, jar).save(record, {}, max_age=max_age))
    return "; ".join(f"{change.name}={change.value}" for change in changes if change.value)
