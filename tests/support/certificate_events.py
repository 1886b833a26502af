"""A CertificateEvents that remembers what proxy/certfiles reported."""

from __future__ import annotations

import asyncio


class Events:
    def __init__(self) -> None:
        self.reloads: list[tuple[str, bool]] = []
        self.expiries: dict[str, float] = {}
        self.changed = asyncio.Event()

    def reloaded(self, role: str, *, ok: bool) -> None:
        self.reloads.append((role, ok))
        self.changed.set()

    def expiry(self, role: str, expires_at: float) -> None:
        self.expiries[role] = expires_at
