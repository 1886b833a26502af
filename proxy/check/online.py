"""`idgate check --online`: ask the provider and the session store what only they can tell."""

from __future__ import annotations

from typing import Final

import aiohttp

from proxy.check.findings import Finding
from proxy.check.provider import check_provider
from proxy.check.session_store import check_redis
from proxy.config.model import SessionStoreKind, Settings

#: idgate's own per-command bound on Redis calls (the session store uses the same).
REDIS_TIMEOUT_SECONDS: Final = 2.0


async def check_online(settings: Settings) -> list[Finding]:
    """One finding per check, in a fixed order: discovery, keys, client, redirect URI, redis."""
    async with aiohttp.ClientSession() as http:
        found = await check_provider(settings, http)
    redis = settings.session.redis
    if settings.session.store is SessionStoreKind.REDIS and redis is not None:
        found.append(await check_redis(redis, timeout_seconds=REDIS_TIMEOUT_SECONDS))
    return found
