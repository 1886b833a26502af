"""`oidc.authorization_params` reach the real provider: its login page shows the `login_hint`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp

from tests.e2e.conftest import OidcProvider
from tests.e2e.idgate_process import base_document, running_idgate
from tests.e2e.provider_login import MAX_STEPS
from tests.support.upstream import EchoUpstream


async def test_the_provider_receives_the_extra_sign_in_parameters(
    module_oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> None:
    """A sign-in started at idgate carries `login_hint` to the provider, whose login form comes
    prefilled with it; idgate's own parameters are untouched."""
    routes = [
        {"name": "app", "path": "/", "upstream": upstream.url, "allow": {"authenticated": True}}
    ]
    document = base_document(module_oidc_provider.issuer, routes)
    document["oidc"]["authorization_params"] = {"login_hint": "carol@example.com"}

    with running_idgate(tmp_path, document) as gate:
        await module_oidc_provider.configure_web_client(
            redirect_uris=[f"{gate.url}/oauth2/callback"]
        )
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{gate.url}/oauth2/start", allow_redirects=False) as start:
                authorization_url = start.headers["Location"]
            url = authorization_url
            for _ in range(MAX_STEPS):
                async with http.get(url, allow_redirects=False) as resp:
                    if resp.status in (302, 303):
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    assert resp.status == 200, f"{url} answered {resp.status}"
                    page = await resp.text()
                    break
            else:
                raise AssertionError("no page at the provider's end of the redirects")

    query = parse_qs(urlsplit(authorization_url).query)
    assert query["login_hint"] == ["carol@example.com"]
    assert query["client_id"] == ["idgate"]
    assert 'name="login"' in page
    assert 'value="carol@example.com"' in page
