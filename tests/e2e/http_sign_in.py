"""Browser sign-in without a browser: an aiohttp client with a cookie jar takes the browser's part.

It follows idgate's and the provider's redirects one by one and fills in the provider's forms, so
a test can stop right before the callback (`authorize`), or finish the sign-in and keep the
session cookie (`sign_in`). Give it a session whose jar keeps cookies of IP-address hosts
(`aiohttp.CookieJar(unsafe=True)`), as idgate listens on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import Morsel
from typing import Final
from urllib.parse import quote

import aiohttp
from yarl import URL

from tests.e2e.browser import SESSION_COOKIE
from tests.e2e.idgate_process import IdgateProcess
from tests.e2e.provider_login import log_in

STATE_COOKIE_PREFIX: Final = "_idgate_state_"
CALLBACK_PATH: Final = "/oauth2/callback"
PROTECTED_PATH: Final = "/builds"


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    """A sign-in the provider has approved, stopped right before idgate's callback."""

    callback_url: str
    state_cookie: Morsel[str]


async def authorize(
    http: aiohttp.ClientSession, gate: IdgateProcess, username: str, *, rd: str | None = None
) -> Authorization:
    """Start a sign-in at idgate (to return to `rd`, by default PROTECTED_PATH) and complete the
    provider's login (and consent) as `username` (provider_login.log_in), stopping where the
    provider sends the browser back to the callback."""
    callback = gate.url + CALLBACK_PATH
    rd = gate.url + PROTECTED_PATH if rd is None else rd
    start = f"{gate.url}/oauth2/start?rd={quote(rd, safe='')}"
    url = await log_in(http, start, username=username, back_to=callback)
    return Authorization(callback_url=url, state_cookie=state_cookie_of(http, gate))


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
