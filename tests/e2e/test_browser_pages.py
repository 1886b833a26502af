"""idgate's own pages as a person meets them in Chromium, with the real provider: who am I,
signed out, access denied with its ways on, and robots.txt."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from playwright.async_api import BrowserContext

from tests.e2e.browser import (
    SignInSetup,
    confirm_provider_sign_out,
    expect_provider_login,
    page_json,
    sign_in,
)
from tests.support.upstream import EchoUpstream

HELP_URL: Final = "https://help.example.com/access?form=idgate"


async def test_who_am_i_then_sign_out_lands_on_the_signed_out_page(
    sign_in_setup: SignInSetup, context: BrowserContext, tmp_path: Path
) -> None:
    """alice opens userinfo, signs in from its page and sees who she is; its Sign out button
    ends the session at idgate and the provider and lands on idgate's signed-out page, whose
    button signs in again."""
    gate = await sign_in_setup.start_idgate()
    issuer = sign_in_setup.provider.issuer
    whoami = f"{gate.url}/oauth2/userinfo"
    page = await context.new_page()
    await page.goto(whoami)
    assert await page.locator("h1").inner_text() == "Sign-in required"
    await page.get_by_role("link", name="Sign in again").click()
    await sign_in(page, issuer, "alice")
    await page.wait_for_url(whoami)
    await page.screenshot(path=tmp_path / "who-am-i.png", full_page=True)

    assert await page.locator("h1").inner_text() == "Who am I"
    shown = dict(
        zip(
            await page.locator("dt").all_inner_texts(),
            await page.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    assert shown["User"] == "alice"
    assert shown["Email"] == "alice@example.com"
    assert shown["Groups"] == "admins, engineering"
    assert shown["Issuer"] == issuer
    assert shown["Signed in with"] == "session"
    assert shown["Ends"].endswith(" UTC")

    await page.get_by_role("link", name="Sign out").click()
    await page.wait_for_url(lambda url: url.startswith(f"{issuer}/session/end"))
    await confirm_provider_sign_out(page)
    await page.wait_for_url(f"{gate.url}/oauth2/signed_out")
    await page.screenshot(path=tmp_path / "signed-out.png", full_page=True)

    assert await page.locator("h1").inner_text() == "Signed out"
    await page.get_by_role("link", name="Sign in again").click()
    await expect_provider_login(page, issuer)


async def test_the_denied_page_leads_back_to_help_and_to_another_account(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, context: BrowserContext, tmp_path: Path
) -> None:
    """bob, refused by the admins-only tool, can go back to the page he came from, follow the
    configured help link, or sign in as someone else; the tool never sees him."""
    gate = await sign_in_setup.start_workers(1, {}, top={"pages": {"help_url": HELP_URL}})
    issuer = sign_in_setup.provider.issuer
    wanted = f"{gate.url}/admin/console"
    page = await context.new_page()
    await page.goto(wanted)
    await sign_in(page, issuer, "bob")
    await page.wait_for_url(wanted)
    came_from = f"{gate.url}/reports/weekly"

    refused = await page.goto(wanted, referer=came_from)
    await page.screenshot(path=tmp_path / "access-denied.png", full_page=True)

    assert refused is not None
    assert refused.status == 403
    assert await page.get_by_role("link", name="ask for access").get_attribute("href") == HELP_URL
    switch = page.get_by_role("link", name="sign in as someone else")
    assert await switch.get_attribute("href") == (
        f"{gate.url}/oauth2/sign_out?rd={gate.url.replace(':', '%3A').replace('/', '%2F')}"
        "%2Fadmin%2Fconsole"
    )
    assert upstream.calls == 0
    await page.get_by_role("link", name="Go back").click()
    await page.wait_for_url(came_from)
    assert (await page_json(page))["raw_path"] == "/reports/weekly"


async def test_crawlers_get_robots_txt_without_signing_in(
    sign_in_setup: SignInSetup, upstream: EchoUpstream, context: BrowserContext
) -> None:
    """/robots.txt asks every crawler to stay out, with no sign-in and nothing sent upstream."""
    gate = await sign_in_setup.start_idgate()

    response = await context.request.get(f"{gate.url}/robots.txt", max_redirects=0)

    assert response.status == 200
    assert await response.text() == "User-agent: *\nDisallow: /\n"
    assert upstream.calls == 0
