"""The provider's login and consent pages, taken the way a browser would, without a browser.

An aiohttp client with a cookie jar follows the redirects one by one and submits each page's
first form (filling in the login form's user name and password), until the provider sends the
browser to the URL the caller waits for; it stops there, so the caller decides what to do with
the code.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Final
from urllib.parse import urljoin

import aiohttp

from tests.e2e.browser import PASSWORD

#: Redirects and forms between the start and the redirect back: login and consent need eight.
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


async def log_in(http: aiohttp.ClientSession, start: str, *, username: str, back_to: str) -> str:
    """GET `start`, then follow redirects and complete the provider's login (and consent) as
    `username`; the first redirect to a URL beginning with `back_to`, which is not requested."""
    method, url = "GET", start
    data: dict[str, str] | None = None
    for _ in range(MAX_STEPS):
        async with http.request(method, url, data=data, allow_redirects=False) as resp:
            if resp.status in (302, 303):
                method, url, data = "GET", urljoin(url, resp.headers["Location"]), None
                if url.startswith(back_to):
                    return url
                continue
            assert resp.status == 200, f"{method} {url} answered {resp.status}"
            form = _FirstForm()
            form.feed(await resp.text())
        assert form.action is not None, f"{url} shows no form"
        data = form.fields
        if "login" in data:
            data |= {"login": username, "password": PASSWORD}
        method, url = "POST", urljoin(url, form.action)
    raise AssertionError(f"the sign-in did not come back to {back_to}")
