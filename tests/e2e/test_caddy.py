"""Caddy `forward_auth` in front of a real `idgate serve`, configured from deploy/caddy/Caddyfile,
and the same decisions seen through Caddy, through nginx and from idgate directly.

One idgate, one Caddy and one nginx serve the module; each test starts the echo upstream on the
port all of them were configured with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.e2e.browser import SCOPES, browser_context, chromium, page_json, sign_in
from tests.e2e.conftest import OidcProvider
from tests.e2e.gateways import (
    CADDY_EXAMPLE,
    GATEWAYS_DOC,
    TRAEFIK_EXAMPLE,
    Gateway,
    gateway_document,
    idgate_behind,
    running_caddy,
)
from tests.e2e.idgate_process import IdgateProcess, running_idgate
from tests.support.upstream import EchoUpstream, serve_echo

IDENTITY: Final = ("x-authenticated-user", "x-authenticated-email", "x-authenticated-groups")
ASSERTION: Final = "x-authenticated-assertion"
#: A documentation network (RFC 5737): no request in these tests ever comes from it.
ELSEWHERE: Final = "192.0.2.0/24"
#: The upstream of an idgate that is only asked for decisions, never to forward (discard port).
NOWHERE: Final = "http://127.0.0.1:9"


async def get(
    base_url: str, path: str, *, token: str | None = None, **headers: str
) -> tuple[int, dict[str, str]]:
    """(status, headers) of one GET, redirects not followed."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(base_url + path, headers=sent, allow_redirects=False) as resp,
    ):
        await resp.read()
        return resp.status, dict(resp.headers)


def test_the_docs_show_the_tested_examples() -> None:
    """docs/gateways.md shows deploy/caddy/Caddyfile and deploy/traefik/dynamic.yml whole."""
    doc = GATEWAYS_DOC.read_text(encoding="utf-8")
    assert CADDY_EXAMPLE.read_text(encoding="utf-8") in doc
    assert TRAEFIK_EXAMPLE.read_text(encoding="utf-8") in doc


async def test_allowed_request_reaches_the_upstream_with_the_identity_caddy_copied(
    caddy: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """alice (admins) passes; the upstream sees the X-Authenticated-* headers from idgate."""
    token = await oidc_provider.token_for_user("alice")

    status, _ = await get(caddy.url, "/admin/panel?tab=1", token=token)

    assert status == 200
    seen: Any = upstream.last()
    assert seen["raw_path"] == "/admin/panel?tab=1"
    headers = seen["headers"]
    assert [headers[name] for name in IDENTITY] == [
        "alice",
        "alice@example.com",
        "admins,engineering",
    ]
    assert headers[ASSERTION].count(".") == 2
    assert "authorization" in headers, "Caddy passes the client's own Authorization on"


async def test_denied_request_gets_403_and_never_reaches_the_upstream(
    caddy: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """bob is not an admin: Caddy answers idgate's 403."""
    token = await oidc_provider.token_for_user("bob")

    status, _ = await get(caddy.url, "/admin/panel", token=token)

    assert status == 403
    assert upstream.calls == 0


async def test_api_client_gets_401_and_a_browser_is_sent_to_the_provider(
    caddy: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """Without credentials a script gets idgate's 401 and Bearer challenge; a browser is
    redirected to the provider's sign-in instead."""
    api_status, api_headers = await get(caddy.url, "/tools/report", Accept="application/json")
    page_status, page_headers = await get(caddy.url, "/tools/report?week=3", Accept="text/html")

    assert api_status == 401
    assert api_headers["WWW-Authenticate"] == 'Bearer realm="idgate"'
    assert page_status == 302
    assert page_headers["Location"].startswith(f"{oidc_provider.issuer}/auth?")
    assert upstream.calls == 0


async def test_identity_headers_and_idgate_cookies_from_the_client_never_reach_the_upstream(
    caddy: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """Spoofed X-Authenticated-* are gone upstream (absent on a public route, replaced when
    signed in), and so are idgate's cookies (chunks, sign-in state, prefixed forms); the tool's
    own cookies stay, lookalike names included."""
    spoofed = {
        "X-Authenticated-User": "root",
        "X-Authenticated-Email": "root@example.com",
        "X-Authenticated-Groups": "admins",
        "X-Authenticated-Assertion": "forged",
        "Cookie": (
            "_idgate_0=a; theme=dark; _idgate_1=b; __Secure-_idgate_state_x=s; my_idgate=mine;"
            " __Host-_idgate=c"
        ),
    }
    token = await oidc_provider.token_for_user("bob")

    anonymous, _ = await get(caddy.url, "/public/page", **spoofed)
    as_bob, _ = await get(caddy.url, "/tools/page", token=token, **spoofed)

    assert (anonymous, as_bob) == (200, 200)
    public_headers: Any = upstream.received[0]["headers"]
    bob_headers: Any = upstream.received[1]["headers"]
    assert not any(name in public_headers for name in (*IDENTITY, ASSERTION))
    assert [bob_headers[name] for name in IDENTITY] == ["bob", "bob@example.com", "engineering"]
    assert bob_headers[ASSERTION] != "forged"
    neutered = (
        "_idgate_0=-; theme=dark; _idgate_1=-; __Secure-_idgate_state_x=-; my_idgate=mine;"
        " __Host-_idgate=-"
    )
    assert public_headers["cookie"] == bob_headers["cookie"] == neutered


async def test_browser_signs_in_through_caddy_and_lands_on_the_page_it_asked_for(
    fresh_oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """Chromium opens a protected page on Caddy, signs in at the provider, and comes back to
    that page, where the upstream sees the identity Caddy copied from idgate."""
    upstream = await serve_echo(aiohttp_server)
    document = gateway_document(fresh_oidc_provider.issuer, upstream.url)
    document["oidc"]["scopes"] = SCOPES
    with idgate_behind(running_caddy, tmp_path, document, upstream=upstream.url) as caddy:
        await fresh_oidc_provider.configure_web_client(
            redirect_uris=[f"{caddy.url}/oauth2/callback"]
        )
        async with chromium() as browser, browser_context(browser) as context:
            page = await context.new_page()
            wanted = f"{caddy.url}/tools/reports?team=core&sort=desc"

            await page.goto(wanted)
            await sign_in(page, fresh_oidc_provider.issuer, "bob")

            assert page.url == wanted
            seen = await page_json(page)
    assert seen["raw_path"] == "/tools/reports?team=core&sort=desc"
    headers = seen["headers"]
    assert [headers[name] for name in IDENTITY] == ["bob", "bob@example.com", "engineering"]
    assert all(
        value == "-" for name, value in _cookies(headers.get("cookie", "")) if "_idgate" in name
    ), "idgate's session cookie went upstream"


def _cookies(header: str) -> list[tuple[str, str]]:
    return [
        (name.strip(), value)
        for name, _, value in (pair.partition("=") for pair in header.split(";"))
    ]


async def test_an_original_uri_sent_by_the_client_through_a_gateway_changes_nothing(
    nginx: Gateway, caddy: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """The gateways overwrite the original-request headers a client sends, so carol asking for a
    page she may not see, while claiming to ask for a public one, is still refused."""
    token = await oidc_provider.token_for_user("carol")
    claimed = {
        "X-Original-URI": "/public/x",
        "X-Original-Method": "GET",
        "X-Forwarded-Uri": "/public/x",
        "X-Forwarded-Method": "GET",
    }

    through_nginx, _ = await get(nginx.url, "/tools/x", token=token, **claimed)
    through_caddy, _ = await get(caddy.url, "/tools/x", token=token, **claimed)

    assert (through_nginx, through_caddy) == (403, 403)
    assert upstream.calls == 0


@pytest.mark.parametrize("user", [None, "carol"])
async def test_a_spoofed_original_uri_from_an_untrusted_peer_changes_nothing(
    idgate: IdgateProcess,
    oidc_provider: OidcProvider,
    tmp_path_factory: pytest.TempPathFactory,
    user: str | None,
) -> None:
    """X-Forwarded-Uri naming a public page opens it when a trusted gateway sends it; sent to an
    idgate that does not trust the sender, the check is refused (403), whoever asks, where
    without the header `/` (not allowed) is judged."""
    token = await oidc_provider.token_for_user(user) if user is not None else None
    document = gateway_document(oidc_provider.issuer, NOWHERE, trusted_proxies=[ELSEWHERE])
    spoof = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/public/page"}
    expected = 401 if user is None else 403

    with running_idgate(tmp_path_factory.mktemp("untrusting"), document) as untrusting:
        refused, _ = await get(untrusting.url, "/oauth2/auth", token=token, **spoof)
        trusted, _ = await get(idgate.url, "/oauth2/auth", token=token, **spoof)
        unspoofed, _ = await get(untrusting.url, "/oauth2/auth", token=token)

    assert trusted == 202, "the header must matter where it is believed, or this proves nothing"
    assert refused == 403
    assert unspoofed == expected


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    user: str | None
    path: str
    status_class: int


def _matrix() -> list[Any]:
    """Every identity on every kind of route, with the status class an API client should see."""
    expected = {
        None: {"/public/x": 2, "/admin/x": 4, "/tools/x": 4},
        "alice": {"/public/x": 2, "/admin/x": 2, "/tools/x": 2},
        "bob": {"/public/x": 2, "/admin/x": 4, "/tools/x": 2},
        "carol": {"/public/x": 2, "/admin/x": 4, "/tools/x": 4},
    }
    return [
        pytest.param(
            Case(user=user, path=path, status_class=status_class),
            id=f"{user or 'anonymous'}-{path}",
        )
        for user, paths in expected.items()
        for path, status_class in paths.items()
    ]


@pytest.fixture(scope="module")
def ways_in(idgate: IdgateProcess, nginx: Gateway, caddy: Gateway) -> dict[str, str]:
    """The same policy three ways: idgate as the proxy, and nginx and Caddy in front of it."""
    return {"idgate": idgate.url, "nginx": nginx.url, "caddy": caddy.url}


@pytest.mark.parametrize("case", _matrix())
async def test_nginx_caddy_and_idgate_itself_reach_identical_decisions(
    ways_in: dict[str, str], upstream: EchoUpstream, oidc_provider: OidcProvider, case: Case
) -> None:
    """An API client gets the same answer through nginx, through Caddy and from idgate itself."""
    token = await oidc_provider.token_for_user(case.user) if case.user is not None else None

    seen = {
        name: (await get(url, case.path, token=token, Accept="application/json"))[0]
        for name, url in ways_in.items()
    }

    assert len(set(seen.values())) == 1, seen
    assert {status // 100 for status in seen.values()} == {case.status_class}, seen
    assert upstream.calls == (3 if case.status_class == 2 else 0)
