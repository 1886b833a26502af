"""Two idgate replicas sharing one Redis: a browser signed in at one is signed in at both, and a
session ended at one (sign-out, back-channel logout) is ended at both.

The replicas listen on different ports of 127.0.0.1; cookies ignore ports, so the one browser
carries the same session cookie to both, as it would to replicas behind one load balancer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import pytest
from playwright.async_api import BrowserContext, Page

from tests.e2e.browser import (
    SESSION_COOKIE,
    SIGNED_OUT_PATH,
    SignInSetup,
    assert_refused_as_ended,
    browser_context,
    chromium,
    end_provider_session,
    expect_provider_login,
    leave_through_sign_out,
    page_json,
    session_cookie,
    signed_in_page,
)
from tests.e2e.idgate_process import IdgateProcess
from tests.e2e.redis_fixture import RedisServer

LOGOUTS: Final = "idgate_logouts_total"


@pytest.fixture
async def replicas(
    sign_in_setup: SignInSetup, redis_server: RedisServer
) -> tuple[IdgateProcess, IdgateProcess]:
    """Replicas A and B on one Redis; A receives the provider's back-channel logouts."""
    session = {"store": "redis", "redis_url": redis_server.url.reveal()}
    return await sign_in_setup.start_idgate(**session), await sign_in_setup.start_idgate(**session)


@pytest.fixture
async def context() -> AsyncIterator[BrowserContext]:
    async with chromium() as browser, browser_context(browser) as context:
        yield context


async def assert_open_as_alice(page: Page, gate: IdgateProcess, path: str) -> None:
    response = await page.goto(gate.url + path)
    assert response is not None
    assert response.status == 200
    assert page.url == gate.url + path, "no detour through sign-in"
    assert (await page_json(page))["headers"]["x-authenticated-user"] == "alice"


async def assert_session_refused(context: BrowserContext, gate: IdgateProcess, path: str) -> None:
    """The browser's session cookie no longer opens `path` at `gate`: a page load is sent to
    sign in, and the decision log says the session was refused (not that none was sent)."""
    mark = gate.log_mark()
    response = await context.request.get(
        gate.url + path, headers={"Accept": "text/html"}, max_redirects=0
    )
    assert response.status == 302
    assert response.headers["location"].startswith(f"{gate.url}/oauth2/start?rd=")
    await assert_refused_as_ended(gate, path, after=mark)


async def test_sign_in_at_one_replica_opens_the_other_until_sign_out_at_either(
    sign_in_setup: SignInSetup,
    replicas: tuple[IdgateProcess, IdgateProcess],
    context: BrowserContext,
) -> None:
    """Signed in through A, the browser is let in by B with the same cookie; signing out through
    A deletes the session in Redis, so B refuses even a copy of the cookie kept from before."""
    a, b = replicas
    page = await signed_in_page(context, sign_in_setup.provider.issuer, f"{a.url}/status", "alice")
    await assert_open_as_alice(page, b, "/status")
    kept = await session_cookie(context, a.url)
    assert kept is not None

    await leave_through_sign_out(
        page, a.url, sign_in_setup.provider.issuer, rd=a.url + SIGNED_OUT_PATH
    )
    assert await session_cookie(context, b.url) is None
    await context.add_cookies([{"name": SESSION_COOKIE, "value": kept, "url": b.url}])

    await assert_session_refused(context, b, "/status")


async def test_back_channel_logout_at_one_replica_ends_the_session_at_the_other(
    sign_in_setup: SignInSetup,
    replicas: tuple[IdgateProcess, IdgateProcess],
    context: BrowserContext,
) -> None:
    """The provider's back-channel logout reaches A only; B shares A's Redis and refuses the
    browser's cookie from then on, sending it to sign in again."""
    a, b = replicas
    page = await signed_in_page(context, sign_in_setup.provider.issuer, f"{a.url}/status", "alice")
    await assert_open_as_alice(page, b, "/status")

    mark = a.log_mark()
    await end_provider_session(page, sign_in_setup.provider.issuer)

    entry = await a.wait_for_entry(lambda e: e.get("logger") == "idgate.logout", after=mark)
    assert entry["msg"] == "back-channel logout ended 1 sessions"
    assert await a.metric(LOGOUTS, result="backchannel") == 1
    assert await b.metric(LOGOUTS, result="backchannel") == 0
    await assert_session_refused(context, b, "/status")
    await page.goto(f"{b.url}/status")
    await expect_provider_login(page, sign_in_setup.provider.issuer)
