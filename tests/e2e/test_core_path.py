"""The core request path through a real `idgate serve`, with tokens from the real OpenID provider.

Most tests share one idgate per module; its upstream is an in-process echo server that each test
starts on the same reserved port. Key rotation, provider outages and reloads change state, so
those tests get an idgate (and, where needed, a provider) of their own.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import jwt
import pytest
from multidict import CIMultiDict

from proxy.stages.header_names import header_key
from tests.e2e.conftest import API_AUDIENCE, OidcProvider
from tests.e2e.idgate_process import (
    SECRET_ENVIRONMENT,
    IdgateProcess,
    base_document,
    running_idgate,
    sample,
)
from tests.support.upstream import EchoUpstream

IDENTITY = ("x-authenticated-user", "x-authenticated-email", "x-authenticated-groups")
ASSERTION = "x-authenticated-assertion"
CHALLENGE = 'Bearer realm="idgate"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="idgate", error="invalid_token"'
DECISIONS = "idgate_auth_decisions_total"
RELOADS = "idgate_config_reloads_total"


def core_routes(upstream: str) -> list[dict[str, Any]]:
    """One route per kind of policy the core path serves."""
    return [
        {
            "name": "tools",
            "host": "tools.idgate.test",
            "upstream": upstream,
            "allow": {"authenticated": True},
        },
        {"name": "public", "path": "/public", "upstream": upstream, "public": True},
        {"name": "admins", "path": "/admin", "upstream": upstream, "allow": {"groups": ["admins"]}},
        {
            "name": "staff",
            "path": "/staff",
            "upstream": upstream,
            "allow": {"domains": ["example.com"]},
            "deny": {"users": ["bob"]},
        },
        {
            "name": "audit",
            "path": "/audit",
            "upstream": upstream,
            "mode": "audit",
            "allow": {"groups": ["admins"]},
        },
        {
            "name": "deploy",
            "path": "/deploy",
            "upstream": upstream,
            "allow": {"claims": {"client_id": "service-a"}},
        },
    ]


@pytest.fixture(scope="module")
def gate(
    oidc_provider: OidcProvider, upstream_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdgateProcess]:
    """The module's idgate, in front of whichever test's echo upstream is running."""
    document = base_document(oidc_provider.issuer, core_routes(f"http://127.0.0.1:{upstream_port}"))
    with running_idgate(tmp_path_factory.mktemp("idgate"), document) as process:
        yield process


@pytest.fixture
def own_gate(
    oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> Iterator[IdgateProcess]:
    """An idgate of the test's own, for reloads (its counters start at zero)."""
    with _core_gate(oidc_provider, upstream, tmp_path) as process:
        yield process


@pytest.fixture
def fresh_gate(
    fresh_oidc_provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> Iterator[IdgateProcess]:
    """An idgate in front of the test's own provider, which the test may rotate or stop."""
    with _core_gate(fresh_oidc_provider, upstream, tmp_path) as process:
        yield process


def _core_gate(
    provider: OidcProvider, upstream: EchoUpstream, tmp_path: Path
) -> AbstractContextManager[IdgateProcess]:
    return running_idgate(tmp_path, base_document(provider.issuer, core_routes(upstream.url)))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique(prefix: str) -> str:
    """A path under `prefix` no other request uses, to find this request's decision-log line."""
    return f"{prefix}/{uuid4().hex}"


async def call(
    http: aiohttp.ClientSession,
    gate: IdgateProcess,
    path: str,
    *,
    token: str | None = None,
    headers: CIMultiDict[str] | dict[str, str] | None = None,
) -> tuple[int, CIMultiDict[str], Any]:
    """(status, headers, JSON body) of one GET through idgate."""
    sent: CIMultiDict[str] = CIMultiDict(headers or {})
    if token is not None:
        sent.update(bearer(token))
    async with http.get(gate.url + path, headers=sent, allow_redirects=False) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.json()


async def verified_assertion(
    http: aiohttp.ClientSession, gate: IdgateProcess, assertion: str, *, route: str
) -> dict[str, Any]:
    """The assertion's claims, verified as an upstream would: idgate's JWKS, aud = the route."""
    async with http.get(f"{gate.url}/oauth2/jwks") as resp:
        assert resp.status == 200
        key_set = jwt.PyJWKSet.from_dict(await resp.json())
    key = key_set[jwt.get_unverified_header(assertion)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        assertion, key, algorithms=["ES256"], audience=route, issuer=gate.url
    )
    return claims


def assert_never_written(gate: IdgateProcess, *tokens: str) -> None:
    """No token, nor its payload or signature alone, nor a secret, is in idgate's output."""
    output = gate.output()
    for token in tokens:
        for part in (token, *token.split(".")[1:]):
            assert part not in output
    for secret in SECRET_ENVIRONMENT.values():
        assert secret not in output


def with_extra_group(token: str, group: str) -> str:
    """The same token with `group` added to its claims and the provider's signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["groups"] = [*claims.get("groups", []), group]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_allowed_user_reaches_the_upstream_with_a_verifiable_identity(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """alice (admins) gets through; the upstream sees who she is and an assertion it can verify."""
    token = await oidc_provider.token_for_user("alice")

    status, _, seen = await call(http, gate, "/admin/panel?tab=1", token=token)

    assert status == 200
    headers = seen["headers"]
    assert seen["raw_path"] == "/admin/panel?tab=1"
    assert headers["x-authenticated-user"] == "alice"
    assert headers["x-authenticated-email"] == "alice@example.com"
    assert headers["x-authenticated-groups"] == "admins,engineering"
    assert "authorization" not in headers, "the client's token must not reach the upstream"
    claims = await verified_assertion(http, gate, headers[ASSERTION], route="admins")
    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["admins", "engineering"]
    assert 0 < claims["exp"] - time.time() <= 300


async def test_assertion_for_one_route_does_not_verify_for_another(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """The assertion's audience is the route, so an upstream of another route refuses it."""
    _, _, seen = await call(http, gate, "/staff", token=await oidc_provider.token_for_user("alice"))

    with pytest.raises(jwt.InvalidAudienceError):
        await verified_assertion(http, gate, seen["headers"][ASSERTION], route="admins")


async def test_user_outside_the_group_is_forbidden(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """bob is not in admins: 403 not_allowed, and nothing reaches the upstream."""
    status, _, body = await call(
        http, gate, "/admin", token=await oidc_provider.token_for_user("bob")
    )

    assert status == 403
    assert body["reason"] == "not_allowed"
    assert upstream.calls == 0


async def test_deny_block_wins_over_allow(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """bob's example.com address is allowed, but the deny block names him: 403 deny_rule."""
    bob, _, refused = await call(
        http, gate, "/staff", token=await oidc_provider.token_for_user("bob")
    )
    alice, _, _ = await call(
        http, gate, "/staff", token=await oidc_provider.token_for_user("alice")
    )

    assert (bob, refused["reason"]) == (403, "deny_rule")
    assert alice == 200
    assert upstream.calls == 1


async def test_domain_rule_matches_the_exact_email_domain(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """carol@example.org is not in the example.com domain."""
    status, _, _ = await call(
        http, gate, "/staff", token=await oidc_provider.token_for_user("carol")
    )

    assert status == 403
    assert upstream.calls == 0


async def test_audit_mode_lets_a_would_be_denial_through_and_logs_it(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """bob is outside the audit route's group: forwarded anyway, logged as would_deny."""
    path = unique("/audit")

    status, _, seen = await call(http, gate, path, token=await oidc_provider.token_for_user("bob"))

    assert status == 200
    assert seen["headers"]["x-authenticated-user"] == "bob"
    line = await gate.wait_for_decision(path)
    assert (line["decision"], line["reason"], line["user"]) == ("would_deny", "not_allowed", "bob")


async def test_service_token_passes_a_claims_rule(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """A client_credentials token of service-a matches `client_id: service-a`; others do not."""
    service_a = await oidc_provider.client_credentials_token("service-a", "service-a-secret")
    service_b = await oidc_provider.client_credentials_token("service-b", "service-b-secret")
    alice = await oidc_provider.token_for_user("alice")

    allowed, _, seen = await call(http, gate, "/deploy/v2", token=service_a)
    other_service, _, _ = await call(http, gate, "/deploy/v2", token=service_b)
    user, _, _ = await call(http, gate, "/deploy/v2", token=alice)

    assert (allowed, other_service, user) == (200, 403, 403)
    assert seen["headers"]["x-authenticated-user"] == "service-a"
    assert seen["headers"]["x-authenticated-groups"] == "deployers,services"
    assert "x-authenticated-email" not in seen["headers"]
    claims = await verified_assertion(http, gate, seen["headers"][ASSERTION], route="deploy")
    assert claims["sub"] == "service-a"


async def test_host_route_matches_only_its_host(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """The tools route serves Host tools.idgate.test; the same path on another host is a 404."""
    token = await oidc_provider.token_for_user("carol")

    on_host, _, seen = await call(
        http, gate, "/dashboards", token=token, headers={"Host": "tools.idgate.test:8443"}
    )
    elsewhere, _, body = await call(http, gate, "/dashboards", token=token)

    assert on_host == 200
    assert seen["headers"]["x-authenticated-user"] == "carol"
    assert seen["headers"]["x-authenticated-groups"] == ""
    claims = await verified_assertion(http, gate, seen["headers"][ASSERTION], route="tools")
    assert claims["groups"] == []
    assert (elsewhere, body["reason"]) == (404, "no_route")
    assert upstream.calls == 1


async def test_public_route_needs_no_token_and_sends_no_identity(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """A public route serves anyone; even with a token, no identity or token goes upstream."""
    anonymous, _, _ = await call(http, gate, "/public/status")
    with_token, _, seen = await call(
        http, gate, "/public/status", token=await oidc_provider.token_for_user("alice")
    )

    assert (anonymous, with_token) == (200, 200)
    headers = seen["headers"]
    assert not {*IDENTITY, ASSERTION, "authorization"} & set(headers)


async def test_no_token_is_unauthenticated_with_a_bearer_challenge(
    gate: IdgateProcess, upstream: EchoUpstream, http: aiohttp.ClientSession
) -> None:
    """A protected route without credentials: 401, `WWW-Authenticate: Bearer`, nothing forwarded."""
    status, headers, body = await call(http, gate, "/admin")

    assert status == 401
    assert headers["WWW-Authenticate"] == CHALLENGE
    assert headers["Cache-Control"] == "no-store"
    assert body["reason"] == "no_credentials"
    assert upstream.calls == 0


async def _bad_token(provider: OidcProvider, kind: str) -> str:
    now = int(time.time())
    match kind:
        case "audience":
            return await provider.token_for_user("alice", audience="https://other.idgate.test")
        case "expired":
            claims = {"sub": "alice", "aud": API_AUDIENCE, "iat": now - 7200, "exp": now - 3600}
            return await provider.sign(claims)
        case "issuer":
            return await provider.sign({"sub": "alice", "aud": API_AUDIENCE, "iss": "http://evil"})
        case "signature":
            return with_extra_group(await provider.token_for_user("bob"), "admins")
        case "unknown_key":
            return await provider.sign({"sub": "alice", "aud": API_AUDIENCE}, key="unpublished")
        case _:
            return "not-a-jwt"


@pytest.mark.parametrize(
    "kind", ["audience", "expired", "issuer", "signature", "unknown_key", "malformed"]
)
async def test_invalid_token_is_refused_as_invalid_token(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
    kind: str,
) -> None:
    """A token that fails any check gets 401 with error="invalid_token", the failure logged."""
    token = await _bad_token(oidc_provider, kind)
    path = unique("/admin")

    status, headers, body = await call(http, gate, path, token=token)

    assert status == 401
    assert headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    assert body["reason"] == "invalid_token"
    assert upstream.calls == 0
    line = await gate.wait_for_decision(path)
    assert (line["decision"], line["token_failure"]) == ("unauthenticated", kind)
    assert_never_written(gate, token)


SPOOFED = (
    ("X-Authenticated-User", "mallory"),
    ("x-authenticated-user", "mallory"),
    ("X_Authenticated_User", "mallory"),
    ("X-AUTHENTICATED-GROUPS", "admins"),
    ("x_authenticated_groups", "admins"),
    ("X-Authenticated_Email", "mallory@example.com"),
    ("X-Authenticated-Assertion", "forged.assertion.value"),
    ("X-Auth-Request-User", "mallory"),
    ("X-Forwarded-User", "mallory"),
    ("Remote-User", "mallory"),
)


async def test_spoofed_identity_headers_never_reach_the_upstream(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """Identity headers a client sends, in any case and with `_` for `-`, are dropped."""
    spoofed: CIMultiDict[str] = CIMultiDict(SPOOFED)
    spoofed_keys = {header_key(name) for name, _ in SPOOFED}

    public, _, anonymous = await call(http, gate, "/public", headers=spoofed)
    signed_in, _, alice = await call(
        http, gate, "/admin", token=await oidc_provider.token_for_user("alice"), headers=spoofed
    )
    bob, _, _ = await call(
        http, gate, "/admin", token=await oidc_provider.token_for_user("bob"), headers=spoofed
    )

    assert (public, signed_in, bob) == (200, 200, 403)
    assert not spoofed_keys & {header_key(name) for name in anonymous["header_names"]}
    names = [header_key(name) for name in alice["header_names"]]
    assert sorted(name for name in names if name in spoofed_keys) == sorted([*IDENTITY, ASSERTION])
    assert alice["headers"]["x-authenticated-user"] == "alice"
    assert "mallory" not in json.dumps(alice["headers"])
    assert upstream.calls == 2


async def test_decisions_are_counted_and_logged_without_tokens(
    gate: IdgateProcess,
    upstream: EchoUpstream,
    oidc_provider: OidcProvider,
    http: aiohttp.ClientSession,
) -> None:
    """Each decision is counted by route, decision and reason and logged as one line, no token."""
    alice = await oidc_provider.token_for_user("alice")
    bob = await oidc_provider.token_for_user("bob")
    allowed, denied, anonymous, audited = (
        unique("/admin"),
        unique("/admin"),
        unique("/admin"),
        unique("/audit"),
    )
    before = await gate.scrape()

    await call(http, gate, allowed, token=alice)
    _, _, refused = await call(http, gate, denied, token=bob)
    _, _, challenged = await call(http, gate, anonymous)
    await call(http, gate, audited, token=bob)

    after = await gate.scrape()
    for route, decision, reason in (
        ("admins", "allow", "group"),
        ("admins", "deny", "not_allowed"),
        ("admins", "unauthenticated", "no_credentials"),
        ("audit", "would_deny", "not_allowed"),
    ):
        labels = {"route": route, "decision": decision, "reason": reason}
        assert sample(after, DECISIONS, **labels) - sample(before, DECISIONS, **labels) == 1
    expected = {
        allowed: ("admins", "alice", "allow", "group", 200),
        denied: ("admins", "bob", "deny", "not_allowed", 403),
        anonymous: ("admins", None, "unauthenticated", "no_credentials", 401),
        audited: ("audit", "bob", "would_deny", "not_allowed", 200),
    }
    lines = {path: await gate.wait_for_decision(path) for path in expected}
    assert len([line for line in gate.decision_log() if line["path"] in expected]) == 4
    for path, line in lines.items():
        fields = (line["route"], line["user"], line["decision"], line["reason"], line["status"])
        assert fields == expected[path]
        assert line["method"] == "GET"
        assert line["latency_ms"] > 0
        assert len(line["request_id"]) >= 16
    assert lines[denied]["request_id"] == refused["request_id"]
    assert lines[anonymous]["request_id"] == challenged["request_id"]
    assert len({line["request_id"] for line in lines.values()}) == 4
    assert_never_written(gate, alice, bob)


async def test_provider_key_rotation_is_picked_up_without_restart(
    fresh_gate: IdgateProcess,
    fresh_oidc_provider: OidcProvider,
    upstream: EchoUpstream,
    http: aiohttp.ClientSession,
) -> None:
    """After the provider rotates its key, tokens with the new kid work; old ones still do."""
    before = await fresh_oidc_provider.token_for_user("alice")
    first, _, _ = await call(http, fresh_gate, "/admin", token=before)

    new_kid = await fresh_oidc_provider.rotate_keys()
    after = await fresh_oidc_provider.token_for_user("alice")
    rotated, _, seen = await call(http, fresh_gate, "/admin", token=after)
    old_again, _, _ = await call(http, fresh_gate, "/admin?again", token=before)

    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert (first, rotated, old_again) == (200, 200, 200)
    assert seen["headers"]["x-authenticated-user"] == "alice"
    assert (
        await fresh_gate.metric("idgate_jwks_refreshes_total", result="success", issuer="oidc") == 2
    )
    assert await fresh_gate.metric("idgate_jwks_keys", issuer="oidc") == 2
    assert_never_written(fresh_gate, before, after)


async def test_provider_outage_keeps_known_keys_and_fails_closed_on_unknown_ones(
    fresh_gate: IdgateProcess,
    fresh_oidc_provider: OidcProvider,
    upstream: EchoUpstream,
    http: aiohttp.ClientSession,
) -> None:
    """With the provider down, a known kid still verifies; a kid idgate never saw is a 401."""
    known = await fresh_oidc_provider.token_for_user("alice")
    unpublished = await fresh_oidc_provider.sign(
        {"sub": "alice", "aud": API_AUDIENCE, "groups": ["admins"]}, key="unpublished"
    )
    await fresh_oidc_provider.rotate_keys()
    rotated = await fresh_oidc_provider.token_for_user("alice")
    fresh_oidc_provider.stop()

    works, _, _ = await call(http, fresh_gate, "/admin", token=known)
    paths = {"unpublished": unique("/admin"), "rotated": unique("/admin")}
    forged, forged_headers, _ = await call(
        http, fresh_gate, paths["unpublished"], token=unpublished
    )
    new, _, _ = await call(http, fresh_gate, paths["rotated"], token=rotated)

    assert (works, forged, new) == (200, 401, 401)
    assert forged_headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    for path in paths.values():
        line = await fresh_gate.wait_for_decision(path)
        assert (line["status"], line["token_failure"]) == (401, "unknown_key")
    assert (
        await fresh_gate.metric("idgate_jwks_refreshes_total", result="failure", issuer="oidc") >= 1
    )
    assert upstream.calls == 1
    assert_never_written(fresh_gate, known, unpublished, rotated)


async def test_sighup_applies_a_changed_policy_without_restart(
    own_gate: IdgateProcess,
    oidc_provider: OidcProvider,
    upstream: EchoUpstream,
    http: aiohttp.ClientSession,
) -> None:
    """Rewriting the config and sending SIGHUP changes who gets in; the reload is counted."""
    bob = await oidc_provider.token_for_user("bob")
    before, _, _ = await call(http, own_gate, "/admin", token=bob)
    routes = core_routes(upstream.url)
    routes[2]["allow"] = {"groups": ["engineering"]}

    own_gate.write_config(base_document(oidc_provider.issuer, routes))
    mark = own_gate.log_mark()
    own_gate.send_hup()
    await own_gate.wait_for_entry(
        lambda e: e.get("msg", "").startswith("configuration reloaded"), after=mark
    )
    after, _, seen = await call(http, own_gate, "/admin", token=bob)

    assert (before, after) == (403, 200)
    assert seen["headers"]["x-authenticated-user"] == "bob"
    assert await own_gate.metric(RELOADS, result="success") == 1
    assert await own_gate.metric(RELOADS, result="failure") == 0


async def test_sighup_with_a_broken_config_keeps_the_running_one(
    own_gate: IdgateProcess,
    oidc_provider: OidcProvider,
    upstream: EchoUpstream,
    http: aiohttp.ClientSession,
) -> None:
    """A config with an error is refused on reload, naming its key path; the old one serves on."""
    bob = await oidc_provider.token_for_user("bob")
    routes = core_routes(upstream.url)
    routes[2]["allow"] = {"groups": ["engineering"]}
    routes[3]["allow"] = {"groups": []}

    own_gate.write_config(base_document(oidc_provider.issuer, routes))
    mark = own_gate.log_mark()
    own_gate.send_hup()
    # reload_config counts the failure right after logging, with no await in between, so by the
    # time idgate answers the scrape below the counter is already up.
    refused = await own_gate.wait_for_entry(
        lambda e: e.get("logger") == "idgate.config" and e.get("level") == "error", after=mark
    )
    status, _, _ = await call(http, own_gate, "/admin", token=bob)

    assert "routes[3].allow.groups" in refused["msg"]
    assert status == 403, "the broken config's policy must not have been applied"
    assert await own_gate.metric(RELOADS, result="failure") == 1
    assert await own_gate.metric(RELOADS, result="success") == 0
