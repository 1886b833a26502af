"""idgate's own pages for people: who am I, signed out, and robots.txt for crawlers."""

from __future__ import annotations

from proxy.config.model import Policy, Route
from tests.support.gate import Gate, StartGate
from tests.support.signed_in import HTML, cookie_header, sign_in

CSP = "default-src 'none'"


async def test_userinfo_is_a_page_for_a_browser_and_json_for_anything_else(gate: Gate) -> None:
    """A browser's userinfo is a "who am I" page with the identity, its issuer, when the session
    ends, and a sign-out button; curl and API clients keep the JSON."""
    session = cookie_header(await sign_in(gate))

    page = await gate.client.get("/oauth2/userinfo", headers=session | HTML)
    api = await gate.client.get("/oauth2/userinfo", headers=session)

    text = await page.text()
    assert (page.status, page.content_type) == (200, "text/html")
    assert page.headers["Content-Security-Policy"].startswith(CSP)
    assert page.headers["Cache-Control"] == "no-store"
    assert "<h1>Who am I</h1>" in text
    assert "<dt>User</dt><dd>alice</dd>" in text
    assert f"<dt>Issuer</dt><dd>{gate.issuer.url}</dd>" in text
    assert "<dt>Signed in with</dt><dd>session</dd>" in text
    assert " UTC</dd>" in text
    assert '<a class="button" href="https://idgate.test/oauth2/sign_out">Sign out</a>' in text
    assert api.content_type == "application/json"
    assert (await api.json())["user"] == "alice"


async def test_the_userinfo_page_escapes_what_the_token_says(gate: Gate) -> None:
    """Claims are text, never markup: a user name full of HTML is shown escaped."""
    headers = gate.bearer("<script>alert(1)</script>", groups=["a&b"]) | HTML

    response = await gate.client.get("/oauth2/userinfo", headers=headers)

    text = await response.text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<dd>a&amp;b</dd>" in text


async def test_signed_out_page_offers_to_sign_in_again(gate: Gate) -> None:
    """Sign-out without an `rd` of its own lands on a page that says so, with a way back in."""
    signed_out = await gate.client.get("/oauth2/sign_out", allow_redirects=False)
    location = signed_out.headers["Location"]
    assert location == f"{gate.settings.public_url}/oauth2/signed_out"
    page = await gate.client.get("/oauth2/signed_out")

    text = await page.text()
    assert page.status == 200
    assert page.headers["Content-Security-Policy"].startswith(CSP)
    assert "<h1>Signed out</h1>" in text
    assert 'href="https://idgate.test/oauth2/start?rd=%2F">Sign in again</a>' in text


async def test_robots_txt_needs_no_sign_in_and_disallows_everything(gate: Gate) -> None:
    """Crawlers get idgate's robots.txt without signing in; nothing reaches an upstream."""
    response = await gate.client.get("/robots.txt")

    assert response.status == 200
    assert response.content_type == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.text() == "User-agent: *\nDisallow: /\n"
    assert gate.upstream.calls == 0


async def test_a_public_route_serves_its_own_robots_txt(start_gate: StartGate) -> None:
    """A public site behind idgate keeps its own robots.txt."""
    site = (await start_gate()).upstream
    public = await start_gate(
        routes=(Route(name="site", upstream=site.url, policy=Policy(public=True)),)
    )

    response = await public.client.get("/robots.txt")

    assert response.status == 200
    assert (await response.json())["raw_path"] == "/robots.txt"
    assert site.calls == 1
