"""`/oauth2/ext_authz/...`: Envoy's HTTP ext_authz check, answered as the proxy would answer the
original request, with 200 (the only status Envoy takes as an allow) and the identity headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from proxy.endpoints.own_paths import ext_authz_target
from tests.support.gate import Gate

CHECK = "/oauth2/ext_authz"


async def test_an_allowed_request_is_200_with_the_identity_headers(gate: Gate) -> None:
    """Envoy copies these headers onto the request it forwards; nothing reaches the upstream."""
    response = await gate.client.get(
        f"{CHECK}/admin/panel?tab=1",
        headers=gate.bearer("alice", email="alice@example.com", groups=["admins"]),
    )

    assert response.status == 200
    assert response.headers["X-Authenticated-User"] == "alice"
    assert response.headers["X-Authenticated-Email"] == "alice@example.com"
    assert response.headers["X-Authenticated-Groups"] == "admins"
    assertion = response.headers["X-Authenticated-Assertion"]
    assert jwt.get_unverified_header(assertion)["alg"] == "ES256"
    assert jwt.decode(assertion, options={"verify_signature": False})["aud"] == "admin"
    assert response.headers["Cache-Control"] == "no-store"
    assert gate.upstream.calls == 0


async def test_refusals_are_the_proxys_own(gate: Gate) -> None:
    """Denied is 403, an API client without credentials 401 with the Bearer challenge, a path no
    route serves 404: Envoy hands each to the client as it is."""
    denied = await gate.client.get(f"{CHECK}/admin", headers=gate.bearer("bob", groups=[]))
    anonymous = await gate.client.get(f"{CHECK}/admin", headers={"Accept": "application/json"})
    nowhere = await gate.client.get(f"{CHECK}/nowhere", headers=gate.bearer("alice"))

    assert denied.status == 403
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="idgate"'
    assert nowhere.status == 404


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(gate: Gate) -> None:
    """The redirect returns to the original request's URL (Envoy's `Host` and path), not to the
    check's."""
    response = await gate.client.get(
        f"{CHECK}/admin/panel?tab=1",
        headers={"Accept": "text/html", "Host": "tools.example.com"},
        allow_redirects=False,
    )

    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/oauth2/start"
    assert parse_qs(location.query)["rd"] == ["http://tools.example.com/admin/panel?tab=1"]


async def test_the_original_method_is_judged(gate: Gate) -> None:
    """Envoy checks with the original method: a method-restricted route sees it."""
    token = gate.bearer("alice", groups=["admins"])
    for method in ("GET", "POST", "DELETE", "OPTIONS"):
        response = await gate.client.request(method, f"{CHECK}/admin", headers=token)
        assert response.status == 200, method


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{CHECK}/public/../admin", 401),  # judged as /admin, not as the public route
        (f"{CHECK}/../jwks", 404),  # judged as /jwks (no route), never as idgate's /oauth2/jwks
        (f"{CHECK}/%2e%2e/%2E%2E/oauth2/jwks", 404),  # a route path, never the endpoint itself
    ],
)
async def test_dot_segments_never_reach_idgates_own_endpoints(
    gate: Gate, path: str, status: int
) -> None:
    """The original path is normalised on its own, after the prefix is taken off."""
    # Sent as written: the client would otherwise resolve the dot segments itself.
    url = gate.client.make_url("").with_path(path, encoded=True)
    response = await gate.client.session.get(url, headers={"Accept": "application/json"})
    assert response.status == status


@pytest.mark.parametrize(
    ("raw_path", "target"),
    [
        ("/oauth2/ext_authz/a/b?c=d", "/a/b?c=d"),
        ("/oauth2/ext_authz", "/"),
        ("/oauth2/ext_authz?x=1", "/?x=1"),
        ("/oauth2/ext_authzz/a", None),
        ("/oauth2/auth", None),
        ("/app/oauth2/ext_authz/a", None),
    ],
)
def test_the_original_target_is_read_from_the_raw_path(raw_path: str, target: str | None) -> None:
    """Only paths below the prefix, on a segment boundary, are checks."""
    assert ext_authz_target(raw_path, "/oauth2") == target
