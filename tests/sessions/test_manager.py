"""Session lifetime rules over time: idle timeout, absolute lifetime, and the sliding touch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from proxy.config.model import OIDCSettings, Secret, SessionSettings
from proxy.observability.metrics import Metrics
from proxy.oidc.flow import TokenSet
from proxy.oidc.jwks import ProviderKeys
from proxy.sessions import manager as manager_module
from proxy.sessions.cookie_store import CookieStore
from proxy.sessions.manager import SessionEnded, SessionManager
from proxy.sessions.store import CookieChange
from tests.support.issuer import FakeClock
from tests.support.settings import SESSION_SECRET, make_settings

IDLE = 600
LIFETIME = 3600
COOKIE = "_idgate"


REFRESH = 300


@pytest.fixture
async def manager() -> AsyncIterator[tuple[SessionManager, FakeClock]]:
    async with _manager(refresh_seconds=10 * LIFETIME) as built:
        yield built


@pytest.fixture
async def refreshing_manager() -> AsyncIterator[tuple[SessionManager, FakeClock]]:
    """Sessions fall due for refresh after REFRESH seconds (before the idle timeout)."""
    async with _manager(refresh_seconds=REFRESH) as built:
        yield built


@asynccontextmanager
async def _manager(*, refresh_seconds: int) -> AsyncIterator[tuple[SessionManager, FakeClock]]:
    clock = FakeClock(now=1_700_000_000.0)
    session = SessionSettings(
        secrets=(Secret(SESSION_SECRET),),
        idle_timeout_seconds=IDLE,
        lifetime_seconds=LIFETIME,
        refresh_seconds=refresh_seconds,
    )
    settings = make_settings("https://issuer.test", "http://127.0.0.1:1", session=session)
    metrics = Metrics(CollectorRegistry())
    async with aiohttp.ClientSession() as http:
        yield (
            SessionManager(
                settings,
                store=CookieStore(
                    session.secrets, cookie_name=COOKIE, max_lifetime_seconds=LIFETIME, clock=clock
                ),
                provider=ProviderKeys(
                    OIDCSettings(issuer="https://issuer.test", client_id="x").as_issuer,
                    http,
                    metrics,
                ),
                http=http,
                metrics=metrics,
                clock=clock,
            ),
            clock,
        )


def jar(changes: list[CookieChange]) -> dict[str, str]:
    return {change.name: change.value for change in changes if change.value is not None}


TOKENS = TokenSet(access_token="at", refresh_token="rt", id_token="idt", expires_at=None)
CLAIMS = {"sub": "alice", "email": "alice@example.com", "groups": ["eng"], "nonce": "n"}


async def test_a_session_ends_after_the_idle_timeout(
    manager: tuple[SessionManager, FakeClock],
) -> None:
    """A session unused for longer than idle_timeout is refused and its cookie cleared."""
    sessions, clock = manager
    cookies = jar(await sessions.create(CLAIMS, TOKENS, {}))
    clock.advance(IDLE + 1)
    with pytest.raises(SessionEnded):
        await sessions.identify(cookies)
    assert [change.value for change in await sessions.forget(cookies)] == [None]


async def test_use_slides_the_idle_timeout_but_not_the_lifetime(
    manager: tuple[SessionManager, FakeClock],
) -> None:
    """Each use within idle_timeout keeps the session; the absolute lifetime still ends it."""
    sessions, clock = manager
    cookies = jar(await sessions.create(CLAIMS, TOKENS, {}))
    for _ in range(LIFETIME // (IDLE // 2) - 1):
        clock.advance(IDLE // 2)
        identity = await sessions.identify(cookies)
        assert identity is not None
        cookies |= jar(identity.cookies)
    clock.advance(IDLE // 2)
    with pytest.raises(SessionEnded):
        await sessions.identify(cookies)


async def test_policy_claims_leave_out_token_bookkeeping(
    manager: tuple[SessionManager, FakeClock],
) -> None:
    """The session keeps the user's claims for policies, not the token's nonce or times."""
    sessions, _ = manager
    cookies = jar(await sessions.create({**CLAIMS, "iat": 1, "exp": 2}, TOKENS, {}))
    identity = await sessions.identify(cookies)
    assert identity is not None
    assert identity.principal.user == "alice"
    assert identity.principal.groups == frozenset({"eng"})
    assert "nonce" not in identity.principal.claims
    assert "exp" not in identity.principal.claims


async def test_no_session_cookie_is_no_session(manager: tuple[SessionManager, FakeClock]) -> None:
    """Without a session cookie, identify says None: the caller decides (401 or sign-in)."""
    sessions, _ = manager
    assert await sessions.identify({"other": "cookie"}) is None


async def test_a_refresh_held_elsewhere_keeps_the_session_within_the_grace(
    refreshing_manager: tuple[SessionManager, FakeClock],
) -> None:
    """While another worker holds a due session's refresh lock, the session stays usable for
    the grace period without a refresh of its own, and ends once that refresh is overdue."""
    sessions, clock = refreshing_manager
    cookies = jar(await sessions.create(CLAIMS, TOKENS, {}))
    identity = await sessions.identify(cookies)
    assert identity is not None
    grace = manager_module._REFRESH_GRACE_SECONDS
    async with sessions.store.refresh_lock(identity.record.session_id) as held:
        assert held
        clock.advance(REFRESH + grace / 2)
        within = await sessions.identify(cookies)
        assert within is not None
        assert within.record.verified_at == identity.record.verified_at
        clock.advance(grace)
        with pytest.raises(SessionEnded):
            await sessions.identify(cookies)
