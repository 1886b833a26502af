"""`allow_cors_preflight` in Chromium: a page on another origin calls a tool through idgate with
a bearer token and a custom header, so the browser sends a CORS preflight first, without
credentials. On a route that allows it the tool answers the preflight and the call succeeds; on
one that does not, idgate answers 401 and the browser refuses the call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.e2e.browser import chromium
from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate

PREFLIGHTS: Final = web.AppKey("preflights", list[str])
PAGE_ORIGIN: Final = web.AppKey("page_origin", str)

#: Runs in the page: the cross-origin call, and what came of it.
CALL: Final = """
async ([url, token]) => {
    try {
        const response = await fetch(url, {
            headers: {"Authorization": "Bearer " + token, "X-Custom": "from-the-page"},
        });
        return {status: response.status, body: await response.json()};
    } catch (error) {
        return {failed: String(error)};
    }
}
"""


async def tool(request: web.Request) -> web.Response:
    """A tool that answers CORS itself: preflights from the page's origin, and the call."""
    allow = {"Access-Control-Allow-Origin": request.app[PAGE_ORIGIN], "Vary": "Origin"}
    if request.method == "OPTIONS":
        request.app[PREFLIGHTS].append(request.headers.get("Access-Control-Request-Method", ""))
        allow |= {
            "Access-Control-Allow-Methods": "GET",
            "Access-Control-Allow-Headers": "authorization, x-custom",
        }
        return web.Response(status=204, headers=allow)
    body = {
        "user": request.headers.get("X-Authenticated-User"),
        "custom": request.headers.get("X-Custom"),
    }
    return web.json_response(body, headers=allow)


async def page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>app</title>", content_type="text/html")


@dataclass(frozen=True, slots=True)
class Tool:
    url: str
    preflights: list[str]
    """The `Access-Control-Request-Method` of each preflight the tool answered."""


@pytest.fixture
async def page_origin(aiohttp_server: AiohttpServer) -> str:
    """The origin of the page that makes the calls: another port, so another origin."""
    app = web.Application()
    app.router.add_get("/", page)
    server = await aiohttp_server(app)
    return f"http://{server.host}:{server.port}"


@pytest.fixture
async def cors_tool(aiohttp_server: AiohttpServer, page_origin: str) -> Tool:
    app = web.Application()
    app[PREFLIGHTS] = []
    app[PAGE_ORIGIN] = page_origin
    app.router.add_route("*", "/{tail:.*}", tool)
    server = await aiohttp_server(app)
    return Tool(url=f"http://{server.host}:{server.port}", preflights=app[PREFLIGHTS])


@pytest.fixture
def cors_idgate(
    oidc_provider: OidcProvider, cors_tool: Tool, tmp_path: Path
) -> Iterator[IdgateProcess]:
    """idgate with a route that lets preflights through and one that does not."""
    allow = {"authenticated": True}
    routes: list[dict[str, Any]] = [
        {
            "name": "cors",
            "path": "/cors",
            "upstream": cors_tool.url,
            "allow": allow,
            "allow_cors_preflight": True,
        },
        {"name": "strict", "path": "/strict", "upstream": cors_tool.url, "allow": allow},
    ]
    with running_idgate(tmp_path, base_document(oidc_provider.issuer, routes)) as process:
        yield process


async def test_a_cross_origin_call_passes_its_preflight_only_where_the_route_allows(
    cors_idgate: IdgateProcess,
    oidc_provider: OidcProvider,
    page_origin: str,
    cors_tool: Tool,
) -> None:
    """The preflight reaches the tool unauthenticated; the call itself is still judged."""
    token = await oidc_provider.token_for_user("alice")
    async with chromium() as browser:
        # Not browser_context(): with request routing on, Playwright answers CORS preflights
        # itself and Chromium never sends them. This page loads nothing but its own origin.
        context = await browser.new_context()
        tab = await context.new_page()
        await tab.goto(page_origin + "/")

        allowed = await tab.evaluate(CALL, [cors_idgate.url + "/cors/data", token])
        refused = await tab.evaluate(CALL, [cors_idgate.url + "/strict/data", token])

    assert allowed == {"status": 200, "body": {"user": "alice", "custom": "from-the-page"}}
    assert "failed" in refused, "a preflight answered 401 must fail the call"
    assert cors_tool.preflights == ["GET"], "only the allowing route's preflight reaches the tool"
