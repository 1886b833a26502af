"""Two real OpenID providers as two named issuers of one idgate (issue 12).

Provider `sso` signs browsers in and issues user tokens; a second, separate `oidc-provider`
process with keys of its own is the issuer `partner`, whose client_credentials tokens carry only
`sub`, `client_id` and `aud`, like glewlwyd's. One config maps both: the browser user by
`preferred_username` (which differs from her `sub`), the service by `sub`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import pytest

from proxy.demo.ports import free_loopback_ports
from tests.e2e.http_sign_in import CALLBACK_PATH, sign_in
from tests.e2e.idgate_process import IdgateProcess, base_document, running_idgate
from tests.e2e.oidc_provider import OidcProvider, running_provider
from tests.e2e.tools import API_AUDIENCE
from tests.support.upstream import EchoUpstream

#: The partner's resource: its tokens name this audience, never the sso provider's.
PARTNER_AUDIENCE = "https://partner-api.idgate.test"
USER_CLAIMS = ["preferred_username", "sub"]


def workdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


@pytest.fixture
def partner_provider(tmp_path: Path) -> Iterator[OidcProvider]:
    """The second provider: another process, other signing keys."""
    with running_provider(workdir(tmp_path, "partner"), shared=False) as provider:
        yield provider


def routes(upstream: str) -> list[dict[str, Any]]:
    """One route per issuer, and one for any signed-in caller."""
    return [
        limited("sso-only", "/sso", "oidc", upstream),
        limited("partner-only", "/partner", "partner", upstream),
        catch_all(upstream),
    ]


def limited(name: str, path: str, issuer: str, upstream: str) -> dict[str, Any]:
    return catch_all(upstream) | {"name": name, "path": path, "issuers": [issuer]}


def catch_all(upstream: str) -> dict[str, Any]:
    return {"name": "any", "path": "/", "upstream": upstream, "allow": {"authenticated": True}}


def issuer(name: str, iss: str, audience: str) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": iss,
        "audiences": [audience],
        "claims": {"user": USER_CLAIMS},
        "max_token_lifetime": "10m",
        "jwks_min_refresh_interval": "1ms",
        "http_timeout": "2s",
    }


@pytest.fixture
async def gate(
    fresh_oidc_provider: OidcProvider,
    partner_provider: OidcProvider,
    upstream: EchoUpstream,
    tmp_path: Path,
) -> AsyncIterator[IdgateProcess]:
    document = base_document(fresh_oidc_provider.issuer, routes(upstream.url))
    document["oidc"] |= {
        "scopes": ["openid", "email", "profile", "groups"],
        "user_claim": USER_CLAIMS,
    }
    document["issuers"] = [issuer("partner", partner_provider.issuer, PARTNER_AUDIENCE)]
    with running_idgate(workdir(tmp_path, "idgate"), document) as process:
        await fresh_oidc_provider.configure_web_client(redirect_uris=[process.url + CALLBACK_PATH])
        yield process


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookie jar: `unsafe` keeps cookies of IP-address hosts such as 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def through(
    http: aiohttp.ClientSession, gate: IdgateProcess, prefix: str, token: str | None = None
) -> tuple[int, dict[str, Any], str]:
    """(status, JSON body, path) of one GET to a fresh path under `prefix`."""
    path = f"{prefix}/{uuid4().hex}"
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with http.get(gate.url + path, headers=headers, allow_redirects=False) as resp:
        return resp.status, await resp.json(), path


async def test_a_browser_user_and_a_partner_service_each_appear_as_their_issuer_names_them(
    gate: IdgateProcess,
    fresh_oidc_provider: OidcProvider,
    partner_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """Both identities are right from one config, and a route limited to one issuer refuses the
    other's valid session or token."""
    await sign_in(http, gate, "alice")
    service_token = await partner_provider.client_credentials_token(
        "service-b", "service-b-secret", resource=PARTNER_AUDIENCE
    )
    user_token = await fresh_oidc_provider.token_for_user("bob")

    browser_status, browser_seen, browser_path = await through(http, gate, "/sso")
    session_refused, session_body, _ = await through(http, gate, "/partner")
    async with aiohttp.ClientSession() as api:
        service_status, service_seen, service_path = await through(
            api, gate, "/partner", service_token
        )
        user_status, user_seen, _ = await through(api, gate, "/", user_token)
        service_refused, service_body, refused_path = await through(
            api, gate, "/sso", service_token
        )
        user_refused, _, _ = await through(api, gate, "/partner", user_token)

    assert (browser_status, service_status, user_status) == (200, 200, 200)
    # The browser user by her username (her `sub` is "alice"), the service by its `sub`.
    assert browser_seen["headers"]["x-authenticated-user"] == "alice.l"
    assert browser_seen["headers"]["x-authenticated-issuer"] == "oidc"
    assert service_seen["headers"]["x-authenticated-user"] == "service-b"
    assert service_seen["headers"]["x-authenticated-issuer"] == "partner"
    # An access token of the sso provider carries no username: its `sub` names the user.
    assert user_seen["headers"]["x-authenticated-user"] == "bob"
    browser_line = await gate.wait_for_decision(browser_path)
    service_line = await gate.wait_for_decision(service_path)
    assert (browser_line["source"], browser_line["issuer"]) == ("session", "oidc")
    assert (service_line["source"], service_line["issuer"]) == ("bearer", "partner")
    labels = {"result": "valid", "reason": "ok", "issuer": "partner"}
    assert await gate.metric("idgate_token_validations_total", **labels) == 1

    assert (session_refused, service_refused, user_refused) == (401, 401, 401)
    assert session_body["reason"] == service_body["reason"] == "invalid_token"
    refused_line = await gate.wait_for_decision(refused_path)
    assert (refused_line["token_failure"], refused_line["issuer"]) == (
        "issuer_not_accepted",
        "partner",
    )


async def test_a_token_naming_the_other_issuer_is_checked_with_that_issuers_keys_only(
    gate: IdgateProcess,
    fresh_oidc_provider: OidcProvider,
    partner_provider: OidcProvider,
) -> None:
    """The sso provider signs a token naming the partner's `iss` and audience: idgate looks its
    kid up at the partner only, where no such key exists."""
    forged = await fresh_oidc_provider.sign(
        {"iss": partner_provider.issuer, "aud": PARTNER_AUDIENCE, "sub": "service-b"}
    )
    async with aiohttp.ClientSession() as api:
        status, body, path = await through(api, gate, "/partner", forged)

    assert (status, body["reason"]) == (401, "invalid_token")
    line = await gate.wait_for_decision(path)
    assert (line["token_failure"], line["issuer"]) == ("unknown_key", "partner")


async def test_an_unreachable_issuer_fails_only_its_own_tokens(
    fresh_oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> None:
    """An issuer whose keys cannot be fetched leaves idgate ready and the other issuer's tokens
    working; its own tokens get 503, never a 200, and `/readyz` says which issuer is missing."""
    [closed_port] = free_loopback_ports(1)
    down = f"http://127.0.0.1:{closed_port}"
    document = base_document(fresh_oidc_provider.issuer, [catch_all(upstream.url)])
    document["issuers"] = [issuer("down", down, API_AUDIENCE)]
    # The sso provider signs it, naming the unreachable issuer: only that issuer's keys count.
    stranded = await fresh_oidc_provider.sign({"iss": down, "aud": API_AUDIENCE, "sub": "x"})
    with running_idgate(workdir(tmp_path, "idgate"), document) as gate:
        async with aiohttp.ClientSession() as api:
            user_token = await fresh_oidc_provider.token_for_user("alice")
            working, _, _ = await through(api, gate, "/", user_token)
            failing, body, _ = await through(api, gate, "/", stranded)
            async with api.get(gate.url + "/readyz") as resp:
                ready = (resp.status, await resp.json())

    assert working == 200
    assert (failing, body["reason"]) == (503, "provider_unavailable")
    assert ready == (200, {"ready": True, "issuers": {"oidc": True, "down": False}})
