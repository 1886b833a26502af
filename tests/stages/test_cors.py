"""`allow_cors_preflight`: an uncredentialed preflight reaches the upstream, nothing else does."""

from __future__ import annotations

import pytest
from pytest_aiohttp import AiohttpServer

from proxy.config.model import Policy, Route, Rule
from tests.support.gate import Gate, StartGate
from tests.support.upstream import EchoUpstream, serve_echo

PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "PUT",
    "Access-Control-Request-Headers": "x-custom",
}


async def gate_for(
    start_gate: StartGate, aiohttp_server: AiohttpServer, *, allow_cors_preflight: bool
) -> tuple[Gate, EchoUpstream]:
    upstream = await serve_echo(aiohttp_server)
    route = Route(
        name="api",
        upstream=upstream.url,
        allow_cors_preflight=allow_cors_preflight,
        policy=Policy(allow=Rule(groups=frozenset({"admins"}))),
    )
    return await start_gate(routes=(route,)), upstream


async def test_a_preflight_reaches_the_upstream_without_an_identity(
    start_gate: StartGate, aiohttp_server: AiohttpServer
) -> None:
    """The upstream answers the preflight; it is counted as an allow with its own reason."""
    gate, upstream = await gate_for(start_gate, aiohttp_server, allow_cors_preflight=True)

    response = await gate.client.options("/data", headers=PREFLIGHT)

    assert response.status == 200
    seen = upstream.last()
    assert seen["method"] == "OPTIONS"
    assert "x-authenticated-user" not in seen["headers"]  # type: ignore[operator]
    decisions = gate.metric(
        "idgate_auth_decisions_total", route="api", decision="allow", reason="cors_preflight"
    )
    assert decisions == 1


@pytest.mark.parametrize(
    ("method", "headers", "allow_cors_preflight"),
    [
        ("OPTIONS", {**PREFLIGHT, "Authorization": "Bearer x"}, True),
        ("OPTIONS", {**PREFLIGHT, "Cookie": "other=1"}, True),
        ("OPTIONS", {"Origin": "https://app.example.com"}, True),
        ("OPTIONS", {"Access-Control-Request-Method": "PUT"}, True),
        ("GET", PREFLIGHT, True),
        ("OPTIONS", PREFLIGHT, False),
    ],
)
async def test_anything_else_is_judged_as_usual(
    start_gate: StartGate,
    aiohttp_server: AiohttpServer,
    method: str,
    headers: dict[str, str],
    allow_cors_preflight: bool,
) -> None:
    """Credentials, a missing CORS header, another method, or a route without the option (the
    default): a request like any other, so 401."""
    gate, upstream = await gate_for(
        start_gate, aiohttp_server, allow_cors_preflight=allow_cors_preflight
    )

    response = await gate.client.request(method, "/data", headers=headers)

    assert response.status == 401
    assert upstream.calls == 0
