"""nginx `auth_request` in front of a real `idgate serve`, configured from deploy/nginx/idgate.conf.

One idgate and one nginx serve the module; each test starts the echo upstream on the port both
were configured with. The browser sign-in needs a provider and an idgate of its own: idgate's
`public_url` must be nginx's URL, so that the provider sends the browser back through nginx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from playwright.async_api import BrowserContext
from pytest_aiohttp import AiohttpServer

from tests.e2e.browser import SCOPES, browser_context, chromium, page_json, sign_in
from tests.e2e.conftest import OidcProvider
from tests.e2e.gateways import (
    GATEWAYS_DOC,
    NGINX_EXAMPLE,
    Gateway,
    gateway_document,
    idgate_behind,
    running_nginx,
)
from tests.e2e.idgate_process import IdgateProcess, running_idgate
from tests.support.upstream import EchoUpstream, serve_echo

IDENTITY = ("x-authenticated-user", "x-authenticated-email", "x-authenticated-groups")
ASSERTION = "x-authenticated-assertion"
#: The snippet README.md gives users; it must work exactly as written.
SNIPPET = """\
    auth_request /oauth2/auth;
    error_page 401 = /oauth2/sign_in;
    auth_request_set $user   $upstream_http_x_auth_request_user;
    auth_request_set $email  $upstream_http_x_auth_request_email;
    auth_request_set $groups $upstream_http_x_auth_request_groups;
"""
LOCATION = """\
    location / {
        proxy_pass http://internal-tool:8080;
"""
IDENTITY_LINES = """\
        proxy_set_header X-Authenticated-User   $user;
        proxy_set_header X-Authenticated-Email  $email;
        proxy_set_header X-Authenticated-Groups $groups;
"""


async def get(
    gateway: Gateway, path: str, *, token: str | None = None, **headers: str
) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one GET through the gateway, redirects not followed."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(gateway.url + path, headers=sent, allow_redirects=False) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.text()


async def verified_assertion(
    gateway: Gateway, assertion: str, *, route: str, issuer: str
) -> dict[str, Any]:
    """The assertion's claims, verified as an upstream would, with the keys nginx serves."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway.url}/oauth2/jwks") as resp,
    ):
        assert resp.status == 200
        key_set = jwt.PyJWKSet.from_dict(await resp.json())
    key = key_set[jwt.get_unverified_header(assertion)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        assertion, key, algorithms=["ES256"], audience=route, issuer=issuer
    )
    return claims


def test_the_example_holds_the_snippet_and_the_docs_show_the_example() -> None:
    """deploy/nginx/idgate.conf contains README's snippet verbatim, and docs/gateways.md shows
    the whole tested file, so neither can drift from what these tests run."""
    example = NGINX_EXAMPLE.read_text(encoding="utf-8")
    assert SNIPPET in example
    assert LOCATION in example
    assert IDENTITY_LINES in example
    assert example in GATEWAYS_DOC.read_text(encoding="utf-8")


async def test_bearer_request_reaches_the_upstream_with_the_identity_nginx_set(
    nginx: Gateway, idgate: IdgateProcess, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """alice's bearer request passes; the upstream sees the headers nginx took from idgate."""
    token = await oidc_provider.token_for_user("alice")

    status, _, _ = await get(nginx, "/admin/panel?tab=1", token=token)

    assert status == 200
    seen: Any = upstream.last()
    assert seen["raw_path"] == "/admin/panel?tab=1"
    headers = seen["headers"]
    assert headers["x-authenticated-user"] == "alice"
    assert headers["x-authenticated-email"] == "alice@example.com"
    assert headers["x-authenticated-groups"] == "admins,engineering"
    claims = await verified_assertion(nginx, headers[ASSERTION], route="admin", issuer=idgate.url)
    assert claims["sub"] == "alice"


async def test_denied_request_gets_403_and_never_reaches_the_upstream(
    nginx: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """bob is not an admin: nginx answers 403 from idgate's decision."""
    token = await oidc_provider.token_for_user("bob")

    status, _, _ = await get(nginx, "/admin/panel", token=token)

    assert status == 403
    assert upstream.calls == 0


@pytest.mark.parametrize(
    ("token", "challenge"),
    [
        pytest.param(None, 'Bearer realm="idgate"', id="no-credentials"),
        pytest.param(
            "not.a.jwt", 'Bearer realm="idgate", error="invalid_token"', id="invalid-token"
        ),
    ],
)
async def test_api_client_without_valid_credentials_gets_401_with_the_challenge(
    nginx: Gateway, upstream: EchoUpstream, token: str | None, challenge: str
) -> None:
    """A script gets 401 and idgate's Bearer challenge, not a redirect to an HTML login page."""
    status, headers, _ = await get(nginx, "/tools/report", token=token, Accept="application/json")

    assert status == 401
    assert headers["WWW-Authenticate"] == challenge
    assert "Location" not in headers
    assert upstream.calls == 0


async def test_browser_without_a_session_is_sent_to_the_provider(
    nginx: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """A browser (Accept: text/html) is redirected to the provider's sign-in, with a login-state
    cookie, instead of seeing a 401."""
    status, headers, _ = await get(nginx, "/tools/report?week=3", Accept="text/html")

    assert status == 302
    assert headers["Location"].startswith(f"{oidc_provider.issuer}/auth?")
    assert "redirect_uri=" in headers["Location"]
    assert "Set-Cookie" in headers
    assert upstream.calls == 0


async def test_clients_cannot_call_the_auth_subrequest_through_nginx(
    nginx: Gateway, upstream: EchoUpstream
) -> None:
    """`/oauth2/auth` is nginx-internal: from outside it is a 404, not a decision oracle."""
    status, _, _ = await get(nginx, "/oauth2/auth")

    assert status == 404
    assert upstream.calls == 0


async def test_identity_headers_sent_by_the_client_never_reach_the_upstream(
    nginx: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider
) -> None:
    """Spoofed X-Authenticated-* from a client are gone upstream: replaced by the real identity,
    or absent on a public route where there is none."""
    spoofed = {
        "X-Authenticated-User": "root",
        "X-Authenticated-Email": "root@example.com",
        "X-Authenticated-Groups": "admins",
        "X-Authenticated-Assertion": "forged",
    }
    token = await oidc_provider.token_for_user("bob")

    anonymous, _, _ = await get(nginx, "/public/page", **spoofed)
    as_bob, _, _ = await get(nginx, "/tools/page", token=token, **spoofed)

    assert (anonymous, as_bob) == (200, 200)
    public_headers: Any = upstream.received[0]["headers"]
    bob_headers: Any = upstream.received[1]["headers"]
    assert not any(name in public_headers for name in (*IDENTITY, ASSERTION))
    assert [bob_headers[name] for name in IDENTITY] == ["bob", "bob@example.com", "engineering"]
    assert bob_headers[ASSERTION] != "forged"


@pytest.mark.parametrize(
    ("cookie", "kept"),
    [
        pytest.param("_idgate=s", "", id="only-idgate"),
        pytest.param("theme=dark; _idgate=s", "theme=dark", id="last"),
        pytest.param("_idgate_0=a; _idgate_1=b; theme=dark", "theme=dark", id="chunks-first"),
        pytest.param(
            "theme=dark; _idgate_0=a; lang=en; __Host-_idgate_1=b; x_idgate=1",
            "theme=dark; lang=en; x_idgate=1",
            id="interleaved",
        ),
        pytest.param(
            "my_idgate=1; _idgate_extra=2; _idgate_stateful=3",
            "my_idgate=1; _idgate_extra=2; _idgate_stateful=3",
            id="lookalikes",
        ),
        pytest.param(
            "theme=dark; _idgate_0=a; _idgate_1=b; _idgate_2=c; _idgate_3=d", "", id="four-chunks"
        ),
        pytest.param("theme=dark; __Secure-_idgate_state_1=s", "", id="secure-state"),
        pytest.param("theme=dark; _idgate =s", "", id="space-before-equals"),
    ],
)
async def test_the_tool_gets_its_own_cookies_but_never_idgates(
    nginx: Gateway, upstream: EchoUpstream, oidc_provider: OidcProvider, cookie: str, kept: str
) -> None:
    """idgate's session cookie, whole or in up to three chunks, is taken out of the Cookie header
    the tool receives and the tool's own cookies stay as they were; any idgate cookie the maps
    leave (a fourth chunk, another form) means the tool gets no Cookie at all."""
    token = await oidc_provider.token_for_user("bob")

    status, _, _ = await get(nginx, "/tools/page", token=token, Cookie=cookie)

    assert status == 200
    headers: Any = upstream.last()["headers"]
    assert headers.get("cookie", "") == kept


async def test_browser_signs_in_through_nginx_and_lands_on_the_page_it_asked_for(
    fresh_oidc_provider: OidcProvider, aiohttp_server: AiohttpServer, tmp_path: Path
) -> None:
    """Chromium opens a protected page on nginx, signs in at the provider, and comes back to
    that page, where the upstream sees the identity nginx passed on and no idgate cookie; a
    session idgate refreshes during a check reaches the browser through nginx."""
    upstream = await serve_echo(aiohttp_server)
    document = gateway_document(fresh_oidc_provider.issuer, upstream.url)
    document["oidc"]["scopes"] = SCOPES
    # Every check after sign-in refreshes the session, so each answers with a new cookie.
    document["session"]["refresh_interval"] = "1ms"
    with idgate_behind(running_nginx, tmp_path, document, upstream=upstream.url) as nginx:
        await fresh_oidc_provider.configure_web_client(
            redirect_uris=[f"{nginx.url}/oauth2/callback"]
        )
        async with chromium() as browser, browser_context(browser) as context:
            page = await context.new_page()
            wanted = f"{nginx.url}/tools/reports?team=core&sort=desc"

            await page.goto(wanted)
            await sign_in(page, fresh_oidc_provider.issuer, "alice")

            assert page.url == wanted
            landed = await page_json(page)
            before = await session_cookie(context)
            await page.reload()
            again = await page_json(page)
            after = await session_cookie(context)
    assert landed["raw_path"] == "/tools/reports?team=core&sort=desc"
    for seen in (landed, again):
        headers = seen["headers"]
        assert [headers[name] for name in IDENTITY] == [
            "alice",
            "alice@example.com",
            "admins,engineering",
        ]
        assert "_idgate" not in headers.get("cookie", ""), "idgate's session cookie went upstream"
    refreshed = before != after  # compared here so a failure never prints a cookie
    assert refreshed, "the refreshed session never reached the browser"


async def session_cookie(context: BrowserContext) -> str:
    """The value of idgate's (unchunked) session cookie in the browser."""
    values = [
        cookie.get("value", "")
        for cookie in await context.cookies()
        if cookie.get("name") == "_idgate"
    ]
    assert len(values) == 1
    return values[0]


async def test_nginx_missing_from_trusted_proxies_is_refused_and_logged(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> None:
    """An idgate whose trusted_proxies leave nginx out refuses its checks (403, logged, counted)
    instead of judging `GET /`, which would let bob (example.com, not an admin) into /admin."""
    document = gateway_document(
        oidc_provider.issuer, upstream.url, trusted_proxies=("10.9.9.9/32",)
    )
    (tmp_path / "idgate").mkdir()
    (tmp_path / "nginx").mkdir()
    token = await oidc_provider.token_for_user("bob")
    with (
        running_idgate(tmp_path / "idgate", document) as idgate,
        running_nginx(
            tmp_path / "nginx", idgate=f"127.0.0.1:{idgate.port}", upstream=upstream.url[7:]
        ) as nginx,
    ):
        status, _, _ = await get(nginx, "/admin/panel", token=token)
        entry = await idgate.wait_for_entry(lambda e: e.get("logger") == "idgate.forward_auth")
        decision = await idgate.wait_for_decision("/oauth2/auth")
        refusals = await idgate.metric("idgate_forward_auth_untrusted_peers_total")

    assert status == 403
    assert upstream.calls == 0
    assert "not in trusted_proxies" in entry["msg"]
    assert "x-original-uri" in entry["msg"]
    assert decision["reason"] == "untrusted_gateway"
    assert refusals == 1
