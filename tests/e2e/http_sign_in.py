"""Browser sign-in without a browser: an aiohttp client with a cookie jar takes the browser's part.

It follows idgate's and the provider's redirects one by one and fills in the provider's forms, so
a test can stop right before the callback (`authorize`), or finish the sign-in and keep the
session cookie (`sign_in`). Give it a session whose jar keeps cookies of IP-address hosts
(`aiohttp.CookieJar(unsafe=True)`), as idgate listens on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookies import Morsel
from typing import Final
from urllib.parse import quote, urljoin

import aiohttp
from yarl import URL

from tests.e2e.browser import PASSWORD, SESSION_COOKIE
from tests.e2e.idgate_process import IdgateProcess

STATE_COOKIE_PREFIX: Final = "_idgate_state_"
CALLBACK_PATH: Final = "/oauth2/callback"
PROTECTED_PATH: Final = "/builds"
#: Redirects and forms between /oauth2/start and the callback: login and consent need eight.
MAX_STEPS: Final = 20


class _FirstForm(HTMLParser):
    """The first form of a page: where it posts, and its inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and self.action is None:
            self.action, self._inside = found.get("action") or "", True
        elif tag == "input" and self._inside and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    """A sign-in the provider has approved, stopped right before idgate's callback."""

    callback_url: str
    state_cookie: Morsel[str]


async def authorize(
    http: aiohttp.ClientSession, gate: IdgateProcess, username: str
) -> Authorization:
    """Start a sign-in at idgate and complete the provider's login (and consent) as `username`,
    following each redirect by hand until the provider sends the browser back to the callback."""
    callback = gate.url + CALLBACK_PATH
    method, url = "GET", f"{gate.url}/oauth2/start?rd={quote(gate.url + PROTECTED_PATH, safe='')}"
    data: dict[str, str] | None = None
    for _ in range(MAX_STEPS):
        async with http.request(method, url, data=data, allow_redirects=False) as resp:
            if resp.status in (302, 303):
                method, url, data = "GET", urljoin(url, resp.headers["Location"]), None
                if url.startswith(callback):
                    return Authorization(callback_url=url, state_cookie=state_cookie_of(http, gate))
                continue
            assert resp.status == 200, f"{method} {url} answered {resp.status}"
            form = _FirstForm()
            form.feed(await resp.text())
        assert form.action is not None, f"{url} shows no form"
        data = form.fields
        if "login" in data:
            data |= {"login": username, "password": PASSWORD}
        method, url = "POST", urljoin(url, form.action)
    raise AssertionError(f"the sign-in did not come back to {callback}")


def state_cookie_of(http: aiohttp.ClientSession, gate: IdgateProcess) -> Morsel[str]:
    [cookie] = [
        morsel
        for name, morsel in http.cookie_jar.filter_cookies(URL(gate.url + CALLBACK_PATH)).items()
        if name.startswith(STATE_COOKIE_PREFIX)
    ]
    return cookie


async def sign_in(http: aiohttp.ClientSession, gate: IdgateProcess, username: str) -> str:
    """A completed sign-in in `http`'s jar; the session cookie's value."""
    authorization = await authorize(http, gate, username)
    async with http.get(authorization.callback_url, allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == gate.url + PROTECTED_PATH
    return http.cookie_jar.filter_cookies(URL(gate.url))[SESSION_COOKIE].value
