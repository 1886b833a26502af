"""`/oauth2/auth`: the same decisions as the proxy path, in the answers gateways understand."""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import replace

import pytest

from proxy.config.model import ForwardAuthSettings, Policy, Route, Rule, StepUp
from proxy.endpoints.forward_auth import decision_lifetime
from proxy.identity.principal import CredentialSource, Principal, SignIn
from proxy.runtime import Runtime
from proxy.sessions.store import CookieChange
from tests.support.context import make_context
from tests.support.gate import Gate, StartGate

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
async def gateway(start_gate: StartGate) -> Gate:
    """idgate with the test client's address (loopback) as a trusted gateway."""
    return await start_gate(trusted_proxies=LOOPBACK)


def original(uri: str, method: str = "GET") -> dict[str, str]:
    return {"X-Original-URI": uri, "X-Original-Method": method}


async def test_allowed_is_202_with_identity_headers(gateway: Gate) -> None:
    """An allowed original request gets 202 and the X-Auth-Request-* names nginx reads."""
    response = await gateway.client.get(
        "/oauth2/auth",
        headers={
            **original("/admin/panel?x=1"),
            **gateway.bearer("alice", email="alice@example.com", groups=["admins", "eng"]),
        },
        allow_redirects=False,
    )
    assert response.status == 202
    assert response.headers["X-Auth-Request-User"] == "alice"
    assert response.headers["X-Auth-Request-Email"] == "alice@example.com"
    assert response.headers["X-Auth-Request-Groups"] == "admins,eng"
    assert response.headers["X-Authenticated-User"] == "alice"
    assert response.headers["X-Authenticated-Assertion"].count(".") == 2
    assert response.headers["Cache-Control"] == "max-age=5"
    assert response.headers["X-Idgate-Path"] == "/admin/panel"
    assert await response.read() == b""
    assert gateway.upstream.calls == 0, "forward-auth decides; it never proxies"


async def test_denied_is_403_and_unauthenticated_is_401_never_a_redirect(gateway: Gate) -> None:
    """Denied gets 403; no credentials gets 401 even for a browser (nginx maps 302 to 500)."""
    denied = await gateway.client.get(
        "/oauth2/auth", headers={**original("/admin"), **gateway.bearer("bob", groups=[])}
    )
    assert denied.status == 403
    browser = await gateway.client.get(
        "/oauth2/auth",
        headers={**original("/admin"), "Accept": "text/html"},
        allow_redirects=False,
    )
    assert browser.status == 401


async def test_the_original_method_is_judged(start_gate: StartGate) -> None:
    """Traefik's X-Forwarded-Method decides which method-restricted route applies."""
    routes = (
        Route(name="read", methods=frozenset({"GET"}), policy=Policy(public=True)),
        Route(name="write", policy=Policy(allow=Rule(groups=frozenset({"writers"})))),
    )
    gate = await start_gate(trusted_proxies=LOOPBACK, routes=routes)
    read = await gate.client.get(
        "/oauth2/auth", headers={"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/doc"}
    )
    write = await gate.client.get(
        "/oauth2/auth", headers={"X-Forwarded-Method": "POST", "X-Forwarded-Uri": "/doc"}
    )
    assert read.status == 202
    assert write.status == 401


@pytest.mark.parametrize("uri", ["/nowhere", "/public/%2Fetc", "/public/a%00"])
async def test_unroutable_or_malformed_targets_are_403(gateway: Gate, uri: str) -> None:
    """What the proxy would answer 400 or 404 is 403 here: nginx accepts only 2xx/401/403."""
    response = await gateway.client.get("/oauth2/auth", headers=original(uri))
    assert response.status == 403


async def test_dot_segments_in_the_original_uri_are_normalised(gateway: Gate) -> None:
    """The original URI is normalised exactly like a proxied path before it is judged."""
    response = await gateway.client.get("/oauth2/auth", headers=original("/public/../admin"))
    assert response.status == 401


@pytest.mark.parametrize(
    "headers",
    [{"X-Forwarded-Uri": "/public/x"}, original("/public/x"), {"X-Forwarded-Host": "other"}],
)
async def test_original_request_headers_from_an_untrusted_peer_are_refused(
    start_gate: StartGate, caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    """Outside trusted_proxies, naming an original request gets 403, a log line and a count,
    never a decision about `GET /` (a gateway missing from trusted_proxies would open paths)."""
    gate = await start_gate(routes=(Route(name="open", policy=Policy(public=True)),))
    plain = await gate.client.get("/oauth2/auth")
    assert plain.status == 202, "without original-request headers the request itself is judged"
    with caplog.at_level(logging.WARNING, logger="idgate.forward_auth"):
        refused = await gate.client.get("/oauth2/auth", headers=headers)
    assert refused.status == 403
    assert (await refused.json())["reason"] == "untrusted_gateway"
    assert "not in trusted_proxies" in caplog.text
    assert "/public/x" not in caplog.text, "values (which may carry a token) are never logged"
    assert gate.metric("idgate_forward_auth_untrusted_peers_total") == 1


async def test_forward_auth_and_proxy_agree(gateway: Gate) -> None:
    """For each identity and path, /oauth2/auth allows exactly what the proxy forwards."""
    identities = {
        "anonymous": {},
        "admin": gateway.bearer("alice", groups=["admins"]),
        "member": gateway.bearer("bob", groups=["eng"]),
        "denied": gateway.bearer("mallory", groups=["admins"]),
    }
    for path in ("/public/a", "/admin", "/beta", "/api/v1", "/nowhere"):
        for name, headers in identities.items():
            proxied = await gateway.client.get(path, headers=headers)
            decided = await gateway.client.get(
                "/oauth2/auth", headers={**original(path), **headers}
            )
            assert (proxied.status == 200) == (decided.status == 202), (path, name)


async def test_a_client_cannot_add_the_other_header_family(gateway: Gate) -> None:
    """nginx sets X-Original-URI and passes the client's X-Forwarded-Uri on: disagreement is 403."""
    response = await gateway.client.get(
        "/oauth2/auth",
        headers={**original("/admin"), "X-Forwarded-Uri": "/public/x"},
    )
    assert response.status == 403
    agreeing = await gateway.client.get(
        "/oauth2/auth", headers={**original("/public/x"), "X-Forwarded-Uri": "/public/x"}
    )
    assert agreeing.status == 202


async def test_an_allow_holds_no_longer_than_its_token(gateway: Gate) -> None:
    """A token that expires in 3 s makes an allow a gateway may reuse for at most 3 s."""
    soon = int(time.time()) + 3
    response = await gateway.client.get(
        "/oauth2/auth",
        headers={**original("/admin"), **gateway.bearer("alice", groups=["admins"], exp=soon)},
    )
    assert response.status == 202
    seconds = int(response.headers["Cache-Control"].removeprefix("max-age="))
    assert 1 <= seconds <= 3


async def test_refusals_and_a_zero_ceiling_are_never_reusable(start_gate: StartGate) -> None:
    """401 and 403 are no-store; with decision_cache_seconds 0 an allow is no-store too."""
    gate = await start_gate(
        trusted_proxies=LOOPBACK, forward_auth=ForwardAuthSettings(decision_cache_seconds=0)
    )
    allowed = await gate.client.get(
        "/oauth2/auth", headers={**original("/admin"), **gate.bearer(groups=["admins"])}
    )
    unauthenticated = await gate.client.get("/oauth2/auth", headers=original("/admin"))
    denied = await gate.client.get(
        "/oauth2/auth", headers={**original("/admin"), **gate.bearer("bob", groups=[])}
    )
    assert [allowed.status, unauthenticated.status, denied.status] == [202, 401, 403]
    for response in (allowed, unauthenticated, denied):
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/public/a/../b", "/public/b"),
        ("//public//x", "/public/x"),
        ("/public/a%20b", "/public/a%20b"),
    ],
)
async def test_the_answer_names_the_path_it_judged(gateway: Gate, uri: str, path: str) -> None:
    """X-Idgate-Path is the normalised, re-encoded path: what a gateway must forward."""
    response = await gateway.client.get("/oauth2/auth", headers=original(uri))
    assert response.status == 202
    assert response.headers["X-Idgate-Path"] == path


async def test_a_location_of_another_route_is_refused(gateway: Gate) -> None:
    """X-Idgate-Routes names the routes the gateway's location serves: a path idgate matches
    to another route is 403, whatever the credentials; one of them is judged as usual."""
    admin = gateway.bearer("alice", groups=["admins"])
    elsewhere = await gateway.client.get(
        "/oauth2/auth", headers={**original("/admin"), **admin, "X-Idgate-Routes": "public"}
    )
    listed = await gateway.client.get(
        "/oauth2/auth", headers={**original("/admin"), **admin, "X-Idgate-Routes": "public admin"}
    )
    assert elsewhere.status == 403
    assert listed.status == 202


def _principal(expires_at: float) -> Principal:
    return Principal(
        user="alice",
        email=None,
        groups=frozenset(),
        claims={},
        source=CredentialSource.SESSION,
        expires_at=expires_at,
    )


@pytest.mark.parametrize(
    ("expires_in", "refresh_in", "cookies", "seconds"),
    [
        pytest.param(None, None, False, 5, id="public-route-the-ceiling"),
        pytest.param(3600.0, None, False, 5, id="ceiling"),
        pytest.param(2.5, None, False, 2, id="token-exp"),
        pytest.param(3600.0, 1.5, False, 1, id="session-refresh"),
        pytest.param(3600.0, 0.5, False, 0, id="refresh-due"),
        pytest.param(-1.0, None, False, 0, id="expired"),
        pytest.param(3600.0, 3600.0, True, 0, id="sets-a-cookie"),
    ],
)
def test_decision_lifetime_is_the_shortest_bound(
    runtime: Runtime,
    expires_in: float | None,
    refresh_in: float | None,
    cookies: bool,
    seconds: int,
) -> None:
    """An allow holds for the ceiling (5 s by default), the identity's expiry or the session's
    next refresh, whichever is first, in whole seconds; never when the answer sets a cookie."""
    now = 1_000_000.0
    ctx = make_context(
        runtime,
        principal=None if expires_in is None else _principal(now + expires_in),
        verify_again_at=None if refresh_in is None else now + refresh_in,
        set_cookies=[CookieChange(name="_idgate", value="x")] if cookies else [],
    )
    assert decision_lifetime(ctx, now=now) == seconds


@pytest.mark.parametrize(
    ("upgrade", "origin", "status"),
    [
        pytest.param("websocket", "https://tools.example.com", 202, id="same-origin"),
        pytest.param("websocket", "https://evil.example", 403, id="cross-site"),
        pytest.param("websocket", "null", 403, id="opaque"),
        pytest.param("websocket", None, 202, id="no-origin-not-a-browser"),
        pytest.param(None, "https://evil.example", 202, id="not-an-upgrade"),
    ],
)
async def test_a_websocket_handshake_gets_the_origin_check(
    gateway: Gate, upgrade: str | None, origin: str | None, status: int
) -> None:
    """With X-Original-Upgrade: websocket the handshake's Origin must be the address it was sent
    to (or an allowed origin), as in the proxy; other requests are judged without it."""
    headers = {
        **original("/admin/socket"),
        **gateway.bearer("alice", groups=["admins"]),
        "X-Forwarded-Host": "tools.example.com",
        "X-Forwarded-Proto": "https",
    }
    if upgrade is not None:
        headers["X-Original-Upgrade"] = upgrade
    if origin is not None:
        headers["Origin"] = origin
    response = await gateway.client.get("/oauth2/auth", headers=headers)
    assert response.status == status


def test_decision_lifetime_ends_when_the_sign_in_outgrows_the_step_up(runtime: Runtime) -> None:
    """On a route with `step_up.max_age`, an allow is not reused past the moment the sign-in
    becomes too old for the route."""
    now = 1_000_000.0
    route = replace(runtime.settings.routes[1], step_up=StepUp(max_age_seconds=60))
    principal = replace(_principal(now + 3600.0), sign_in=SignIn(auth_time=now - 58.0))
    ctx = make_context(runtime, principal=principal, route=route)
    assert decision_lifetime(ctx, now=now) == 2
