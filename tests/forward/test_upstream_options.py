"""A route's upstream options through real HTTP: `preserve_host`, `claim_headers`, and that
`pass_session_access_token` never sends anything for a bearer-token request."""

from __future__ import annotations

from typing import Any

from pytest_aiohttp import AiohttpServer

from proxy.config.model import Policy, Route, Rule
from tests.support.gate import Gate, StartGate
from tests.support.upstream import EchoUpstream, serve_echo


async def gate_with(
    start_gate: StartGate, aiohttp_server: AiohttpServer, **options: Any
) -> tuple[Gate, EchoUpstream]:
    """idgate with one route for any signed-in user, with `options`, to its own echo upstream."""
    upstream = await serve_echo(aiohttp_server)
    route = Route(
        name="app", upstream=upstream.url, policy=Policy(allow=Rule(authenticated=True)), **options
    )
    return await start_gate(routes=(route,)), upstream


async def received_headers(gate: Gate, upstream: EchoUpstream, **headers: str) -> dict[str, str]:
    response = await gate.client.get("/page", headers=headers)
    assert response.status == 200
    seen: Any = upstream.last()["headers"]
    return dict(seen)


async def test_preserve_host_sends_the_clients_host(
    start_gate: StartGate, aiohttp_server: AiohttpServer
) -> None:
    """With preserve_host the upstream sees the Host the client addressed; without, its own."""
    gate, upstream = await gate_with(start_gate, aiohttp_server, preserve_host=True)
    plain, plain_upstream = await gate_with(start_gate, aiohttp_server)

    kept = await received_headers(
        gate, upstream, Host="Tools.Example.com:8443", **gate.bearer("alice")
    )
    own = await received_headers(
        plain, plain_upstream, Host="tools.example.com", **plain.bearer("alice")
    )

    assert kept["host"] == "Tools.Example.com:8443"
    assert own["host"] == plain_upstream.url.removeprefix("http://")


async def test_claims_reach_the_upstream_under_their_headers(
    start_gate: StartGate, aiohttp_server: AiohttpServer
) -> None:
    """Strings and numbers as they are, lists joined with ",", nested paths read, control
    characters removed; a claim the caller lacks sends no header, and the client's copy of a
    claim header never reaches the upstream."""
    gate, upstream = await gate_with(
        start_gate,
        aiohttp_server,
        claim_headers=(
            ("X-Team", "team"),
            ("X-Tenant", "org.id"),
            ("X-Roles", "roles"),
            ("X-Level", "level"),
            ("X-Missing", "nowhere"),
        ),
    )
    token = gate.bearer(
        "alice", team="sre\r\nX-Injected: yes", org={"id": "acme"}, roles=["a", "b"], level=3
    )

    seen = await received_headers(gate, upstream, **token, **{"X-Missing": "forged"})

    assert seen["x-team"] == "sreX-Injected: yes"
    assert "x-injected" not in seen
    assert seen["x-tenant"] == "acme"
    assert seen["x-roles"] == "a,b"
    assert seen["x-level"] == "3"
    assert "x-missing" not in seen, "a client's copy of a claim header must not pass"


async def test_the_session_access_token_is_never_sent_for_a_bearer_request(
    start_gate: StartGate, aiohttp_server: AiohttpServer
) -> None:
    """pass_session_access_token sends a session's token only; a bearer request gets none, and
    a client's own X-Forwarded-Access-Token is removed."""
    gate, upstream = await gate_with(start_gate, aiohttp_server, pass_session_access_token=True)

    seen = await received_headers(
        gate, upstream, **gate.bearer("alice"), **{"X-Forwarded-Access-Token": "forged"}
    )

    assert "x-forwarded-access-token" not in seen
    assert "authorization" not in seen, "the client's token is pass_access_token's business"
