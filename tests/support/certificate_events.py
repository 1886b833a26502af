"""A CertificateEvents that remembers what proxy/certfiles reported."""

from __future__ import annotations

import asyncio

from proxy.config.tls_context import Validity


class Events:
    def __init__(self) -> None:
        self.reloads: list[tuple[str, bool]] = []
        self.expiries: dict[str, float] = {}
        self.changed = asyncio.Event()

    def reloaded(self, role: str, *, ok: bool) -> None:
        self.reloads.append((role, ok))
        self.changed.set()

    def validity(self, soonest: Validity) -> None:
        self.expiries[soonest.role] = soonest.not_after
