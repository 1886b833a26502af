"""Sign-out against the real provider, without a browser: token revocation and redirect targets.

The session's refresh token is read the way only a test can: the cookie store's session cookie
is opened with the session secret the test gave idgate. The proof that revocation worked is the
provider's own token endpoint refusing that refresh token afterwards; with revocation off the
same steps leave it working, so the refusal is revocation's doing and not the sign-out's.
Every test sets the provider's revocation mode first (the module shares one provider).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final, Literal
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import pytest
from yarl import URL

from proxy.config.model import Secret
from proxy.sessions.cookie_store import CookieStore
from tests.e2e.browser import SESSION_COOKIE, SIGNED_OUT_PATH, SignInSetup
from tests.e2e.http_sign_in import authorize, sign_in
from tests.e2e.idgate_process import SESSION_SECRET, IdgateProcess
from tests.e2e.oidc_provider import OidcProvider, ProviderError

REVOCATIONS: Final = "idgate_token_revocations_total"
#: oidc-provider 9's end-session confirmation form (its default logoutSource).
_LOGOUT_FORM: Final = re.compile(
    r'<form id="op.logoutForm" method="post" action="(?P<action>[^"]+)">'
    r'<input type="hidden" name="xsrf" value="(?P<xsrf>[^"]+)"/>'
)
#: A port on the gate's own host where nothing of idgate's runs (RFC 863's discard).
OTHER_PORT: Final = 9


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser's cookie jar: `unsafe` keeps cookies of IP-address hosts such as 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def start(setup: SignInSetup, revocation: Literal["on", "off", "failing"]) -> IdgateProcess:
    """An idgate started after the provider's revocation mode was set (idgate reads discovery
    when it starts)."""
    await setup.provider.set_revocation(revocation)
    return await setup.start_idgate()


async def refresh_token_of(http: aiohttp.ClientSession, gate: IdgateProcess) -> str:
    """The refresh token sealed in the session cookie the jar holds for `gate`."""
    store = CookieStore(
        [Secret(SESSION_SECRET)], cookie_name=SESSION_COOKIE, max_lifetime_seconds=86400
    )
    cookies = {
        name: morsel.value for name, morsel in http.cookie_jar.filter_cookies(URL(gate.url)).items()
    }
    record = await store.load(cookies)
    assert record is not None
    assert record.refresh_token is not None, "the provider issues refresh tokens to idgate"
    return record.refresh_token


async def leave(http: aiohttp.ClientSession, gate: IdgateProcess, rd: str | None = None) -> str:
    """Sign out at idgate (with `rd`), which must clear the session cookie; where it sends the
    browser."""
    query = "" if rd is None else f"?rd={quote(rd, safe='')}"
    async with http.get(f"{gate.url}/oauth2/sign_out{query}", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.cookies[SESSION_COOKIE]["max-age"] == "0"
        return resp.headers["Location"]


def post_logout_redirect_uri(location: str, provider: OidcProvider) -> str:
    assert location.startswith(f"{provider.issuer}/session/end?")
    [value] = parse_qs(urlsplit(location).query)["post_logout_redirect_uri"]
    return value


async def confirm_at_provider(http: aiohttp.ClientSession, location: str) -> str:
    """Open the provider's end-session page and answer "Yes, sign me out"; where the provider
    then sends the browser. The provider shows that page only for a registered
    post_logout_redirect_uri (a 400 otherwise)."""
    async with http.get(location, allow_redirects=False) as resp:
        page = await resp.text()
        assert resp.status == 200, f"the provider refused the end-session request: {page[:300]}"
    form = _LOGOUT_FORM.search(page)
    assert form is not None, "the provider's end-session page shows its confirmation form"
    async with http.post(
        form["action"], data={"xsrf": form["xsrf"], "logout": "yes"}, allow_redirects=False
    ) as resp:
        assert resp.status in (302, 303)
        return resp.headers["Location"]


async def test_after_sign_out_the_provider_refuses_the_old_refresh_token(
    sign_in_setup: SignInSetup, http: aiohttp.ClientSession
) -> None:
    """The refresh token of a session works at the provider until idgate's sign-out, which
    revokes it there: the provider's token endpoint then answers invalid_grant."""
    gate = await start(sign_in_setup, "on")
    await sign_in(http, gate, "alice")
    refresh_token = await refresh_token_of(http, gate)
    assert "access_token" in await sign_in_setup.provider.refresh(refresh_token)

    await leave(http, gate)

    with pytest.raises(ProviderError) as refused:
        await sign_in_setup.provider.refresh(refresh_token)
    assert refused.value.error == "invalid_grant"
    assert await gate.metric(REVOCATIONS, result="revoked") == 2


async def test_without_revocation_at_the_provider_sign_out_still_completes(
    sign_in_setup: SignInSetup, http: aiohttp.ClientSession
) -> None:
    """Against a provider that offers no revocation endpoint, sign-out clears the session and
    goes on to the provider's end-session page as before; the tokens it could not revoke are
    counted as unsupported, and the refresh token still works there (the limit this leaves)."""
    gate = await start(sign_in_setup, "off")
    await sign_in(http, gate, "alice")
    refresh_token = await refresh_token_of(http, gate)

    location = await leave(http, gate)

    assert location.startswith(f"{sign_in_setup.provider.issuer}/session/end?")
    assert await gate.metric(REVOCATIONS, result="unsupported") == 2
    assert "access_token" in await sign_in_setup.provider.refresh(refresh_token)


async def test_a_failing_revocation_endpoint_does_not_block_sign_out(
    sign_in_setup: SignInSetup, http: aiohttp.ClientSession
) -> None:
    """A revocation endpoint answering 503 does not stop the sign-out: the session cookie is
    cleared, the browser goes on to the provider, and both failures are counted."""
    gate = await start(sign_in_setup, "failing")
    await sign_in(http, gate, "alice")

    location = await leave(http, gate, rd=SIGNED_OUT_PATH)

    assert post_logout_redirect_uri(location, sign_in_setup.provider) == gate.url + SIGNED_OUT_PATH
    assert await gate.metric(REVOCATIONS, result="unavailable") == 2
    assert await gate.metric(REVOCATIONS, result="revoked") == 0


async def test_a_relative_rd_is_sent_absolute_and_the_provider_returns_there(
    sign_in_setup: SignInSetup, http: aiohttp.ClientSession
) -> None:
    """`rd=/public/signed-out` reaches the provider as the absolute, registered URL on
    public_url: the provider accepts it, ends its session and sends the browser there."""
    gate = await start(sign_in_setup, "on")
    await sign_in(http, gate, "alice")

    location = await leave(http, gate, rd=SIGNED_OUT_PATH)

    assert post_logout_redirect_uri(location, sign_in_setup.provider) == gate.url + SIGNED_OUT_PATH
    assert await confirm_at_provider(http, location) == gate.url + SIGNED_OUT_PATH


async def test_another_port_of_the_gate_s_host_is_refused_at_sign_in_and_sign_out(
    sign_in_setup: SignInSetup, http: aiohttp.ClientSession
) -> None:
    """`rd` on idgate's own host at another port is another origin: the sign-in returns to "/"
    instead, and the sign-out sends the provider idgate's signed-out page, which the provider
    honours."""
    gate = await start(sign_in_setup, "on")
    elsewhere = f"http://127.0.0.1:{OTHER_PORT}/"
    assert not gate.url.startswith(elsewhere[:-1])

    authorization = await authorize(http, gate, "alice", rd=elsewhere)
    async with http.get(authorization.callback_url, allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/"
    location = await leave(http, gate, rd=elsewhere)

    signed_out = f"{gate.url}/oauth2/signed_out"
    assert post_logout_redirect_uri(location, sign_in_setup.provider) == signed_out
    assert await confirm_at_provider(http, location) == signed_out
