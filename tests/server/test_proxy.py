"""The request path end to end in one process: real sockets, a fake issuer, an echo upstream."""

from __future__ import annotations

import jwt
import pytest

from tests.support.gate import Gate, StartGate


async def test_allowed_request_reaches_upstream_with_identity(gate: Gate) -> None:
    """An allowed bearer request goes upstream with user, email, groups and a signed assertion."""
    token = gate.token("alice", email="alice@example.com", groups=["admins", "eng"])
    response = await gate.client.get(
        "/admin/panel?x=1", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    seen = await response.json()
    headers = seen["headers"]
    assert seen["raw_path"] == "/admin/panel?x=1"
    assert headers["x-authenticated-user"] == "alice"
    assert headers["x-authenticated-email"] == "alice@example.com"
    assert headers["x-authenticated-groups"] == "admins,eng"
    assert "authorization" not in headers, "the client's token must not reach the upstream"

    keys = await (await gate.client.get("/oauth2/jwks")).json()
    public = jwt.PyJWKSet.from_dict(keys).keys[0]
    claims = jwt.decode(
        headers["x-authenticated-assertion"],
        public,
        algorithms=["ES256"],
        audience="admin",
        issuer=gate.settings.public_url,
    )
    assert claims["sub"] == "alice"
    assert claims["groups"] == ["admins", "eng"]
    assert claims["exp"] - claims["iat"] <= 300


async def test_user_outside_the_group_is_forbidden_and_upstream_untouched(gate: Gate) -> None:
    """A valid token without the route's group gets 403 and nothing is forwarded."""
    response = await gate.client.get("/admin", headers=gate.bearer("bob", groups=["eng"]))
    assert response.status == 403
    body = await response.json()
    assert body["reason"] == "not_allowed"
    assert gate.upstream.calls == 0
    assert (
        gate.metric(
            "idgate_auth_decisions_total", route="admin", decision="deny", reason="not_allowed"
        )
        == 1
    )


async def test_deny_wins_over_allow(gate: Gate) -> None:
    """A user matched by the deny block is refused even though the allow block admits them."""
    response = await gate.client.get("/admin", headers=gate.bearer("mallory", groups=["admins"]))
    assert response.status == 403
    assert (await response.json())["reason"] == "deny_rule"


async def test_no_credentials_gets_a_bearer_challenge(gate: Gate) -> None:
    """Without a token a protected route answers 401 with a plain Bearer challenge."""
    response = await gate.client.get("/admin")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="idgate"'
    assert response.headers["Cache-Control"] == "no-store"
    assert gate.upstream.calls == 0


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not.a.jwt", "Bearer ", "Bearer a.b.c.d", "Bearer " + "x" * 20000],
)
async def test_bad_token_gets_invalid_token_challenge(gate: Gate, authorization: str) -> None:
    """A presented token that fails gets 401 with error="invalid_token" and is never echoed."""
    response = await gate.client.get("/admin", headers={"Authorization": authorization})
    assert response.status == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    text = await response.text()
    assert authorization.removeprefix("Bearer ")[:40] not in text or authorization == "Bearer "
    assert gate.upstream.calls == 0


async def test_expired_token_is_refused(gate: Gate) -> None:
    """A token past its exp (beyond the leeway) is unauthenticated, with the reason in the log."""
    response = await gate.client.get(
        "/admin", headers=gate.bearer("alice", groups=["admins"], exp=1_000_000, iat=999_000)
    )
    assert response.status == 401
    assert (
        gate.metric(
            "idgate_token_validations_total", result="invalid", reason="expired", issuer="oidc"
        )
        == 1
    )


@pytest.mark.parametrize(
    "name",
    [
        "X-Authenticated-User",
        "x-authenticated-user",
        "X_Authenticated_User",
        "X-AUTHENTICATED_USER",
        "X-Auth-Request-User",
        "X-Forwarded-User",
        "X-Authenticated-Assertion",
        "X-Authenticated-Issuer",
    ],
)
async def test_spoofed_identity_headers_never_reach_upstream(gate: Gate, name: str) -> None:
    """Identity headers sent by a client are removed, whatever their case or separator."""
    response = await gate.client.get("/public/x", headers={name: "root"})
    assert response.status == 200
    seen = (await response.json())["headers"]
    assert all(value != "root" for value in seen.values()), seen

    response = await gate.client.get(
        "/admin", headers={name: "root", **gate.bearer("alice", groups=["admins"])}
    )
    seen = (await response.json())["headers"]
    assert seen["x-authenticated-user"] == "alice"
    assert seen["x-authenticated-issuer"] == "oidc"
    assert all(value != "root" for value in seen.values()), seen


async def test_public_route_is_forwarded_without_identity(gate: Gate) -> None:
    """A public route needs no credentials and sends no identity upstream."""
    response = await gate.client.get("/public/page")
    assert response.status == 200
    seen = (await response.json())["headers"]
    assert not [name for name in seen if name.startswith("x-authenticated")]


async def test_no_route_is_404(gate: Gate) -> None:
    """A path no route covers is 404: nothing is open by default."""
    response = await gate.client.get("/elsewhere", headers=gate.bearer(groups=["admins"]))
    assert response.status == 404
    assert gate.upstream.calls == 0


@pytest.mark.parametrize(
    "path",
    ["/public/../admin", "/public/%2e%2e/admin", "/public/.%2E/admin", "/public//../../admin"],
)
async def test_dot_segments_cannot_escape_a_public_prefix(gate: Gate, path: str) -> None:
    """A path that normalises into a protected route is judged as that route."""
    response = await gate.client.get(path)
    assert response.status == 401
    assert gate.upstream.calls == 0


async def test_upstream_receives_the_normalised_path(gate: Gate) -> None:
    """What the upstream sees is the one normalised form that policy matched."""
    response = await gate.client.get("/public//a/./b/../c%20d")
    assert response.status == 200
    assert (await response.json())["raw_path"] == "/public/a/c%20d"


@pytest.mark.parametrize("path", ["/public/a%2Fb", "/public/a%5Cb", "/public/a%00b"])
async def test_encoded_separators_are_bad_requests(gate: Gate, path: str) -> None:
    """Encoded slashes, backslashes and NUL are refused with 400 before any routing."""
    response = await gate.client.get(path)
    assert response.status == 400
    assert gate.upstream.calls == 0


async def test_audit_mode_lets_a_would_be_denial_through_and_counts_it(gate: Gate) -> None:
    """In audit mode a denied user is forwarded, and the denial is counted as would_deny."""
    response = await gate.client.get("/beta", headers=gate.bearer("carol", groups=[]))
    assert response.status == 200
    assert (
        gate.metric(
            "idgate_auth_decisions_total", route="beta", decision="would_deny", reason="not_allowed"
        )
        == 1
    )


async def test_audit_mode_still_requires_a_valid_identity(gate: Gate) -> None:
    """Audit mode never lets an anonymous request through."""
    response = await gate.client.get("/beta")
    assert response.status == 401


async def test_token_is_passed_only_where_the_route_asks(gate: Gate) -> None:
    """`pass_access_token: true` forwards the client's Authorization header unchanged."""
    headers = gate.bearer("svc")
    response = await gate.client.get("/api/v1", headers=headers)
    assert response.status == 200
    assert (await response.json())["headers"]["authorization"] == headers["Authorization"]


async def test_decision_only_route_is_not_forwarded(gate: Gate) -> None:
    """A route without an upstream answers forward-auth checks only; direct requests are 404."""
    response = await gate.client.get("/check-only", headers=gate.bearer())
    assert response.status == 404


async def test_untrusted_forwarded_headers_are_dropped(gate: Gate) -> None:
    """X-Forwarded-* from a peer outside trusted_proxies neither reach the upstream nor count."""
    response = await gate.client.get(
        "/public/x",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Host": "evil.test",
            "Forwarded": "for=6.6.6.6",
        },
    )
    seen = (await response.json())["headers"]
    assert "6.6.6.6" not in seen.get("x-forwarded-for", "")
    assert seen.get("x-forwarded-host") != "evil.test"
    assert "forwarded" not in seen


async def test_userinfo_returns_claims_never_tokens(gate: Gate) -> None:
    """`/oauth2/userinfo` answers the identity as uncacheable JSON, with no token in it."""
    token = gate.token("alice", email="alice@example.com", groups=["eng"])
    response = await gate.client.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.json() == {
        "user": "alice",
        "email": "alice@example.com",
        "groups": ["eng"],
        "source": "bearer",
        "issuer": "oidc",
    }
    assert token not in await response.text()
    assert (await gate.client.get("/oauth2/userinfo")).status == 401


async def test_health_and_readiness(gate: Gate) -> None:
    """`/healthz` is always 200; `/readyz` is 200 once the provider's keys are loaded."""
    assert (await gate.client.get("/healthz")).status == 200
    assert (await gate.client.get("/readyz")).status == 200
    assert (await gate.client.post("/healthz")).status == 405


async def test_health_path_does_not_open_a_route(gate: Gate) -> None:
    """A path that merely starts with a health path is routed and judged like any other."""
    assert (await gate.client.get("/healthz/../admin")).status == 401
    assert (await gate.client.get("/healthz/x")).status == 404


async def test_provider_down_at_start_fails_closed(start_gate: StartGate) -> None:
    """With no provider keys ever loaded, protected routes answer 503, public ones still work."""
    from tests.support.issuer import FakeIssuer, SigningKey  # noqa: PLC0415

    gate = await start_gate(issuer=FakeIssuer(keys=[SigningKey(kid="k1")], down=True))
    assert (await gate.client.get("/readyz")).status == 503
    response = await gate.client.get("/admin", headers=gate.bearer(groups=["admins"]))
    assert response.status == 503
    assert gate.upstream.calls == 0
    assert (await gate.client.get("/public/x")).status == 200


async def test_upstream_down_is_502_without_detail(
    unused_tcp_port: int, start_gate: StartGate
) -> None:
    """An unreachable upstream gives 502 whose body names no host, port or exception."""
    from proxy.config.model import Policy, Route  # noqa: PLC0415

    dead = f"http://127.0.0.1:{unused_tcp_port}"
    gate = await start_gate(
        routes=(Route(name="dead", path="/", upstream=dead, policy=Policy(public=True)),),
    )
    response = await gate.client.get("/x")
    assert response.status == 502
    text = await response.text()
    assert str(unused_tcp_port) not in text
    assert "127.0.0.1" not in text


async def test_oversized_header_is_refused_before_token_parsing(
    gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    """A header past the parser's bound gets 400 before any token work, and no log quotes it."""
    token = gate.token("alice", groups=["admins"], padding="SECRETPAD" * 5000)
    response = await gate.client.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 400
    assert gate.metric("idgate_token_validation_duration_seconds_count") == 0
    assert "SECRETPAD" not in caplog.text
    assert token[:40] not in caplog.text
