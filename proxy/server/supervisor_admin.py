"""What a supervisor's admin endpoints (proxy/server/admin.py) act on, kept in step with its
workers' configuration.

The supervisor does not serve requests, so it has no Runtime; it reads the config itself at
start and again at every SIGHUP it passes to its workers, so the admin token follows a rotated
`session.secret` and revocations are written where the workers read them after a reload that moves
the list (`session.redis`). As a worker keeps its runtime on a failed reload, this keeps its state
when the config has issues (each worker logs them) or the new revocation list cannot take over
the revocations in force.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from proxy.config.load import ConfigError, load_settings
from proxy.config.model import Secret, SessionStoreKind, Settings
from proxy.sessions.revocation_list import RevocationList, start_revocation_list
from proxy.sessions.store import StoreUnavailable

if TYPE_CHECKING:
    from proxy.sessions.session_index import SessionIndex

_log = logging.getLogger("idgate.config")


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminState:
    """Built from one Settings; replaced whole on reload."""

    settings: Settings
    revocations: RevocationList
    index: SessionIndex | None
    """The Redis store's session index, on a connection of its own; None with the cookie store."""
    resources: AsyncExitStack
    """Closes the list and the index's connection."""


async def open_admin_state(settings: Settings, previous: AdminState | None = None) -> AdminState:
    """The state for `settings`: `previous`'s list and index when the session settings are
    unchanged, else new ones, the list holding what `previous`'s held in force."""
    if previous is not None and previous.settings.session == settings.session:
        return replace(previous, settings=settings)
    async with AsyncExitStack() as building:
        revocations = await start_revocation_list(
            settings, None if previous is None else previous.revocations
        )
        building.push_async_callback(revocations.close)
        index = None
        if settings.session.store is SessionStoreKind.REDIS:
            # redis-py only when the config names a Redis (proxy/sessions/redis_client.py says why).
            from proxy.sessions.session_index import session_index_for  # noqa: PLC0415

            index = await building.enter_async_context(session_index_for(settings.session))
        resources = building.pop_all()
    return AdminState(settings=settings, revocations=revocations, index=index, resources=resources)


class SupervisorAdmin:
    """The one mutable cell: which AdminState the endpoints use."""

    def __init__(self, state: AdminState) -> None:
        self.current = state
        self._reloading = asyncio.Lock()

    def secrets(self) -> tuple[Secret, ...]:
        return self.current.settings.session.secrets

    def revocations(self) -> RevocationList:
        return self.current.revocations

    def index(self) -> SessionIndex | None:
        return self.current.index

    async def reload(self, path: Path, environ: Mapping[str, str]) -> None:
        """Read the config again and take it; keep the current state on any failure. Never
        raises (it runs as a background task)."""
        async with self._reloading:
            try:
                settings = await asyncio.to_thread(load_settings, path, environ)
            except ConfigError:
                return  # every worker logs the issues and keeps its configuration too
            old = self.current
            try:
                new = await open_admin_state(settings, old)
            except StoreUnavailable as error:
                _log.error("admin endpoints keep the previous configuration: %s", error)
                return
            self.current = new
            if new.resources is not old.resources:
                await old.resources.aclose()
            _log.info("admin endpoints reloaded")

    async def close(self) -> None:
        await self.current.resources.aclose()
