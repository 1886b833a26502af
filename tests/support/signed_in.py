"""Signing in through an in-process idgate as a browser would, without a browser."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientResponse

from tests.support.gate import Gate

HTML = {"Accept": "text/html,application/xhtml+xml"}
SESSION = "__Host-_idgate"


def set_cookies(response: ClientResponse) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for value in response.headers.getall("Set-Cookie", []):
        jar.load(value)
    return jar


def cookie_header(jar: SimpleCookie) -> dict[str, str]:
    live = [f"{name}={morsel.value}" for name, morsel in jar.items() if morsel.value]
    return {"Cookie": "; ".join(live)}


async def sign_in(gate: Gate, return_to: str = "/admin/tools?tab=1") -> SimpleCookie:
    """Runs the whole code flow like a browser would; the session cookies it ends with."""
    started = await gate.client.get(
        f"/oauth2/start?rd={return_to}", allow_redirects=False, headers=HTML
    )
    assert started.status == 302
    location = started.headers["Location"]
    assert location.startswith(gate.issuer.url + "/authorize?")
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = gate.issuer.authorize(location)
    finished = await gate.client.get(
        f"/oauth2/callback?code={code}&state={state}",
        allow_redirects=False,
        headers={**HTML, **cookie_header(set_cookies(started))},
    )
    assert finished.status == 302, await finished.text()
    assert finished.headers["Location"] == return_to
    return set_cookies(finished)
