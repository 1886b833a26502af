"""Browser sign-in as a person experiences it: real provider, real idgate, headless Chromium.

Each test gets its own idgate and browser (so its own cookies and counters); the module shares
one provider, whose sign-in copes with whatever earlier tests left there (a user revoked, a grant
already given). Screenshots of the pages a person lands on are kept in the test's temporary
directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from playwright.async_api import Browser, BrowserContext

from tests.e2e.browser import (
    SESSION_COOKIE,
    SIGNED_OUT_PATH,
    SignInSetup,
    assert_refused_as_ended,
    browser_context,
    confirm_provider_sign_out,
    end_provider_session,
    expect_provider_login,
    leave_through_sign_out,
    page_json,
    session_cookie,
    sign_in,
    signed_in_page,
)
from tests.support.upstream import EchoUpstream

REFRESHES: Final = "idgate_session_refreshes_total"
LOGOUTS: Final = "idgate_logouts_total"
#: Every request re-verifies the session at the provider.
REFRESH_EVERY_REQUEST: Final = {"refresh_interval": "1ms"}


async def test_sign_in_lands_on_the_original_url_with_the_identity_sent_upstream(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, context: BrowserContext, tmp_path: Path
) -> None:
    """A protected URL sends the browser to sign in and back to that very URL, query included;
    the tool sees alice's identity but never idgate's cookie, which is HttpOnly and SameSite=Lax."""
    gate = await sign_in_setup.start_idgate()
    wanted = f"{gate.url}/reports/weekly?team=core&sort=desc"

    page = await signed_in_page(context, sign_in_setup.provider.issuer, wanted, "alice")
    await page.screenshot(path=tmp_path / "landed.png", full_page=True)

    seen = await page_json(page)
    assert seen["raw_path"] == "/reports/weekly?team=core&sort=desc"
    headers = seen["headers"]
    assert headers["x-authenticated-user"] == "alice"
    assert headers["x-authenticated-email"] == "alice@example.com"
    assert headers["x-authenticated-groups"] == "admins,engineering"
    assert upstream.calls == 1
    sent_cookies = [part.split("=")[0].strip() for part in headers.get("cookie", "").split(";")]
    assert not [name for name in sent_cookies if name.startswith(SESSION_COOKIE)]
    [cookie] = [c for c in await context.cookies(gate.url) if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["secure"] is False, "public_url is http here; Secure would drop the cookie"

    # Not a navigation (that is the "who am I" page): a script's or curl's request gets JSON.
    userinfo = await context.request.get(f"{gate.url}/oauth2/userinfo")
    assert await userinfo.json() == {
        "user": "alice",
        "email": "alice@example.com",
        "groups": ["admins", "engineering"],
        "source": "session",
        "issuer": "oidc",
    }


async def test_signed_in_user_outside_the_group_gets_the_access_denied_page(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, context: BrowserContext, tmp_path: Path
) -> None:
    """bob (not in admins) lands on a 403 page that names the route and him, with a sign-out
    link, and the admins-only tool never sees his request."""
    gate = await sign_in_setup.start_idgate()
    wanted = f"{gate.url}/admin/console"
    page = await context.new_page()
    await page.goto(wanted)

    async with page.expect_response(lambda response: response.url == wanted) as landing:
        await sign_in(page, sign_in_setup.provider.issuer, "bob")
    await page.screenshot(path=tmp_path / "access-denied.png", full_page=True)

    assert (await landing.value).status == 403
    assert page.url == wanted
    assert await page.locator("h1").inner_text() == "Access denied"
    assert await page.locator("code").inner_text() == "admins"
    assert await page.locator("strong").inner_text() == "bob"
    link = page.get_by_role("link", name="Sign out")
    assert await link.get_attribute("href") == f"{gate.url}/oauth2/sign_out"
    assert upstream.calls == 0


async def test_sign_out_clears_the_session_cookie_before_the_provider_is_involved(
    sign_in_setup: SignInSetup, context: BrowserContext
) -> None:
    """idgate's sign-out removes its session cookie from the browser at once and hands the
    browser to the provider's end-session endpoint, whatever the provider then does."""
    gate = await sign_in_setup.start_idgate()
    page = await signed_in_page(
        context, sign_in_setup.provider.issuer, f"{gate.url}/dashboards/main", "alice"
    )
    assert await session_cookie(context, gate.url) is not None

    await leave_through_sign_out(
        page, gate.url, sign_in_setup.provider.issuer, rd=gate.url + SIGNED_OUT_PATH
    )

    assert await session_cookie(context, gate.url) is None
    assert await gate.metric(LOGOUTS, result="sign_out") == 1


async def test_after_sign_out_the_protected_url_asks_to_sign_in_again(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, context: BrowserContext
) -> None:
    """Signing out ends the session at idgate and at the provider (confirmed there), returns
    to `rd`, and the protected URL then shows the provider's login form instead of the tool."""
    gate = await sign_in_setup.start_idgate()
    wanted = f"{gate.url}/dashboards/main"
    signed_out = gate.url + SIGNED_OUT_PATH
    page = await signed_in_page(context, sign_in_setup.provider.issuer, wanted, "alice")

    await leave_through_sign_out(page, gate.url, sign_in_setup.provider.issuer, rd=signed_out)
    await confirm_provider_sign_out(page)

    await page.wait_for_url(lambda url: url == signed_out)
    assert (await page_json(page))["raw_path"] == SIGNED_OUT_PATH
    calls = upstream.calls
    await page.goto(wanted)
    await expect_provider_login(page, sign_in_setup.provider.issuer)
    assert upstream.calls == calls


async def test_every_request_refreshes_the_session_at_the_provider(
    sign_in_setup: SignInSetup, context: BrowserContext
) -> None:
    """With a refresh due at every request, each page load re-verifies the session with the
    refresh token and carries on: the tool keeps answering and the success count rises."""
    gate = await sign_in_setup.start_idgate(**REFRESH_EVERY_REQUEST)
    wanted = f"{gate.url}/builds"
    page = await signed_in_page(context, sign_in_setup.provider.issuer, wanted, "alice")
    before = await gate.metric(REFRESHES, result="success")
    cookies = [await session_cookie(context, gate.url)]

    for _ in range(3):
        response = await page.goto(wanted)
        assert response is not None
        assert response.status == 200
        assert (await page_json(page))["headers"]["x-authenticated-user"] == "alice"
        cookies.append(await session_cookie(context, gate.url))

    assert await gate.metric(REFRESHES, result="success") == before + 3
    assert await gate.metric(REFRESHES, result="failure") == 0
    assert len(set(cookies)) == len(cookies), "each refresh writes the renewed session"


async def test_user_revoked_at_the_provider_is_refused_at_the_next_refresh(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, browser: Browser
) -> None:
    """Once the provider revokes alice, her next request fails its refresh: a page load is sent
    to sign in again, an API call gets a JSON 401 that clears the cookie."""
    gate = await sign_in_setup.start_idgate(**REFRESH_EVERY_REQUEST)
    wanted = f"{gate.url}/builds"
    async with browser_context(browser) as tab, browser_context(browser) as script:
        page = await signed_in_page(tab, sign_in_setup.provider.issuer, wanted, "alice")
        # Pages stay open until the end: a closing page's icon request escapes the routes.
        await signed_in_page(script, sign_in_setup.provider.issuer, wanted, "alice")
        calls = upstream.calls
        failures = await gate.metric(REFRESHES, result="failure")

        await sign_in_setup.provider.revoke_user("alice")

        mark = gate.log_mark()
        await page.goto(wanted)
        await expect_provider_login(page, sign_in_setup.provider.issuer)
        await assert_refused_as_ended(gate, "/builds", after=mark)
        assert await session_cookie(tab, gate.url) is None

        response = await script.request.get(wanted, headers={"Accept": "application/json"})
        assert response.status == 401
        assert (await response.json())["reason"] == "invalid_session"
        assert await session_cookie(script, gate.url) is None

        assert upstream.calls == calls
        assert await gate.metric(REFRESHES, result="failure") == failures + 2


async def test_back_channel_logout_from_the_provider_ends_the_session(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, context: BrowserContext
) -> None:
    """When alice signs out at the provider, its back-channel logout reaches idgate, and the
    cookie still in her browser no longer opens the tool."""
    # The cookie store keeps nothing server side: idgate remembers the logout as a revocation
    # its workers share (several workers: tests/e2e/test_revocation.py; replicas: Redis).
    gate = await sign_in_setup.start_idgate()
    wanted = f"{gate.url}/wiki/home"
    page = await signed_in_page(context, sign_in_setup.provider.issuer, wanted, "alice")
    calls = upstream.calls
    mark = gate.log_mark()

    await end_provider_session(page, sign_in_setup.provider.issuer)

    entry = await gate.wait_for_entry(lambda e: e.get("logger") == "idgate.logout", after=mark)
    assert entry["msg"].startswith("back-channel logout ended")
    assert await gate.metric(LOGOUTS, result="backchannel") == 1
    assert await session_cookie(context, gate.url) is not None, "the provider cannot touch it"

    mark = gate.log_mark()
    await page.goto(wanted)
    await expect_provider_login(page, sign_in_setup.provider.issuer)
    await assert_refused_as_ended(gate, "/wiki/home", after=mark)
    assert upstream.calls == calls
