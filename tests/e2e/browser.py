"""Browser sign-in, end to end: idgates wired to the test provider, and headless Chromium.

`SignInSetup` starts idgates in front of an echo upstream and registers each one's callback,
post-logout and back-channel logout URIs with the provider's web client before any browser signs
in. The Playwright helpers take the steps a person takes at the provider's devInteractions pages.

Only the Debian `chromium` package is used (never `playwright install`). Each test launches its
own browser: Playwright's async API belongs to the event loop that started it, and pytest-aiohttp
gives every test a loop of its own. Nothing may leave the machine: the provider's pages import a
web font, so every request that is not for a loopback address is aborted, and so is every
favicon request (see `browser_context`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from tests.e2e.idgate_process import IdgateProcess, base_document, is_decision, running_idgate
from tests.e2e.oidc_provider import OidcProvider
from tests.e2e.tools import require_tool

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)
SCOPES: Final = ["openid", "email", "groups", "offline_access"]
SESSION_COOKIE: Final = "_idgate"
#: Where sign-out sends the browser back to: a public route, so landing there needs no session.
SIGNED_OUT_PATH: Final = "/public/signed-out"
#: Every wait for a page or an element gives up after this long (Playwright's default is 30 s).
TIMEOUT_MS: Final = 10_000
#: The devInteractions login form accepts any password.
PASSWORD: Final = "any password"
_OFF_MACHINE: Final = re.compile(r"^(?!https?://127\.0\.0\.1[:/])")


#: The step-up route of `sign_in_routes`, and the provider's multi-factor `acr` (accounts.mjs).
VAULT_PATH: Final = "/vault"
VAULT_MAX_AGE: Final = 60
ACR_MFA: Final = "urn:idgate:test:mfa"
ACR_PASSWORD: Final = "urn:idgate:test:password"


#: The route of `sign_in_routes` whose upstream receives the session's access token.
WITH_TOKEN_PATH: Final = "/with-token"


def sign_in_routes(upstream: str) -> list[dict[str, Any]]:
    """A public route, an admins-only one, one that needs a recent multi-factor sign-in
    (VAULT_PATH), one that passes the session's access token (WITH_TOKEN_PATH), and the default
    one for any signed-in user."""
    return [
        {"name": "public", "path": "/public", "upstream": upstream, "public": True},
        {"name": "admins", "path": "/admin", "upstream": upstream, "allow": {"groups": ["admins"]}},
        {
            "name": "vault",
            "path": VAULT_PATH,
            "upstream": upstream,
            "allow": {"authenticated": True},
            "step_up": {"max_age": VAULT_MAX_AGE, "acr_values": [ACR_MFA]},
        },
        {
            "name": "with-token",
            "path": WITH_TOKEN_PATH,
            "upstream": upstream,
            "allow": {"authenticated": True},
            "pass_session_access_token": True,
        },
        {"name": "tools", "path": "/", "upstream": upstream, "allow": {"authenticated": True}},
    ]


class SignInSetup:
    """Idgates for browser sign-in in front of `upstream`, all registered with `provider`."""

    def __init__(self, provider: OidcProvider, *, upstream: str, workdir: Path) -> None:
        self.provider = provider
        self._upstream = upstream
        self._workdir = workdir
        self._gates: list[IdgateProcess] = []
        self._stack = ExitStack()

    async def start_idgate(self, **session: object) -> IdgateProcess:
        """A ready idgate with these `session` settings, registered at the provider. The first
        one started receives the provider's back-channel logouts."""
        return await self.start_workers(1, session)

    async def start_workers(
        self,
        workers: int,
        session: Mapping[str, object],
        *,
        top: Mapping[str, object] | None = None,
    ) -> IdgateProcess:
        """As start_idgate, with `workers` worker processes (and `top`-level sections)."""
        document = base_document(self.provider.issuer, sign_in_routes(self._upstream))
        document["oidc"]["scopes"] = SCOPES
        document["session"] |= session
        document |= top or {}
        workdir = self._workdir / f"idgate-{len(self._gates)}"
        workdir.mkdir()
        gate = self._stack.enter_context(running_idgate(workdir, document, workers=workers))
        self._gates.append(gate)
        await self.provider.configure_web_client(
            redirect_uris=[f"{each.url}/oauth2/callback" for each in self._gates],
            post_logout_redirect_uris=[
                url
                for each in self._gates
                for url in (
                    f"{each.url}/",
                    f"{each.url}/oauth2/signed_out",
                    each.url + SIGNED_OUT_PATH,
                )
            ],
            backchannel_logout_uri=f"{self._gates[0].url}/oauth2/backchannel_logout",
        )
        return gate

    def stop(self) -> None:
        """Stop every idgate started here (idempotent)."""
        self._stack.close()


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed when the block ends."""
    executable = require_tool(CHROMIUM, "Debian package chromium runs the browser sign-in tests")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


async def _abort(route: Route) -> None:
    await route.abort()


@asynccontextmanager
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies), loopback only, closed when the block ends."""
    context = await browser.new_context()
    try:
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        await context.route(_OFF_MACHINE, _abort)
        # Chromium asks each origin for its icon whenever it likes; through idgate that would be
        # one more request of the session (a refresh, a refusal) at a moment no test can know.
        # A page being closed may still send one past the routes: keep pages open until the
        # assertions are done (the context closes them).
        await context.route("**/favicon.ico", _abort)
        yield context
    finally:
        await context.close()


async def submit(page: Page, button: str = '[type="submit"]') -> None:
    """Press the page's (first) `button` and wait until the next page has loaded.

    A form post answered by redirects commits only the final page, so "the URL changed" covers
    the whole navigation, whatever its redirect chain was.
    """
    before = page.url
    await page.locator(button).first.click()
    await page.wait_for_url(lambda url: url != before)


async def expect_provider_login(page: Page, issuer: str) -> None:
    """The page is the provider's sign-in form (not a page of idgate or of the tool)."""
    await page.wait_for_url(lambda url: url.startswith(f"{issuer}/interaction/"))
    await page.locator('input[name="login"]').wait_for()


async def sign_in(page: Page, issuer: str, username: str) -> None:
    """On the provider's login form: sign in as `username`, and consent when the provider asks
    (a user's first sign-in to the client), ending wherever the provider sends the browser."""
    await expect_provider_login(page, issuer)
    await page.locator('input[name="login"]').fill(username)
    await page.locator('input[name="password"]').fill(PASSWORD)
    await submit(page)
    at_provider = page.url.startswith(f"{issuer}/interaction/")
    if at_provider and await page.locator('input[value="consent"]').count():
        await submit(page)


async def signed_in_page(context: BrowserContext, issuer: str, url: str, username: str) -> Page:
    """A new page that opened `url`, was sent to the provider, signed in as `username`, and
    landed back on `url`."""
    page = await context.new_page()
    await page.goto(url)
    await sign_in(page, issuer, username)
    await page.wait_for_url(lambda landed: landed == url)
    return page


async def session_cookie(context: BrowserContext, url: str) -> str | None:
    """The value of idgate's session cookie the browser would send to `url`, if any."""
    found = [c["value"] for c in await context.cookies(url) if c["name"] == SESSION_COOKIE]
    return found[0] if found else None


async def assert_refused_as_ended(gate: IdgateProcess, path: str, *, after: int) -> None:
    """idgate's decision log says the request for `path` carried a session it no longer honours
    (not that the request carried none)."""
    # Lines are written in batches, so an allowed request from before `after` may still land
    # after it: the refusal is the first line for `path` that is not an allow.
    entry = await gate.wait_for_entry(
        lambda e: is_decision(e) and e.get("path") == path and e.get("decision") != "allow",
        after=after,
    )
    assert (entry["decision"], entry["reason"]) == ("unauthenticated", "invalid_session"), entry


async def leave_through_sign_out(page: Page, gate: str, issuer: str, *, rd: str) -> None:
    """Open idgate's sign-out with `rd` and wait until its page has taken the browser to the
    provider's end-session endpoint (whatever the provider answers there)."""
    # idgate answers with a page whose script posts the end-session form at once, replacing the
    # page before it finishes loading: wait for idgate's answer only, then for the provider.
    await page.goto(f"{gate}/oauth2/sign_out?rd={quote(rd, safe='')}", wait_until="commit")
    await page.wait_for_url(lambda url: url.startswith(f"{issuer}/session/end"))


async def confirm_provider_sign_out(page: Page) -> None:
    """On the provider's end-session page, which asks whenever the browser is signed in there:
    answer "Yes, sign me out" and wait until the provider has sent the browser on."""
    confirm = page.locator('button[name="logout"]')
    if not await confirm.count():
        shown = await page.locator("body").inner_text()
        raise AssertionError(f"the provider's end-session page did not ask to sign out: {shown!r}")
    await submit(page, 'button[name="logout"]')


async def end_provider_session(page: Page, issuer: str) -> None:
    """Sign out at the provider itself (as from another application): the provider sends a
    back-channel logout to every client of the session before it shows its success page."""
    await page.goto(f"{issuer}/session/end")
    await confirm_provider_sign_out(page)
    await page.wait_for_url(lambda url: url.startswith(f"{issuer}/session/end/success"))


async def page_json(page: Page) -> Any:
    """The JSON document the page shows (Chromium renders a JSON response as text)."""
    return json.loads(await page.locator("pre").first.inner_text())
