"""Rate limits through the app: sign-in starts, callbacks and 401s are limited per client;
identified requests never are."""

from __future__ import annotations

import ipaddress

from proxy.config.model import RateLimitSettings
from tests.support.gate import Gate, StartGate

LIMITED = "idgate_rate_limited_total"


async def test_sign_in_starts_past_the_limit_get_429_with_retry_after(
    start_gate: StartGate,
) -> None:
    """The client's third sign-in start in a minute (limit 2) is refused before any state is
    made: 429, Retry-After, counted, and no state cookie."""
    gate = await start_gate(rate_limits=RateLimitSettings(sign_in_per_minute=2))
    for _ in range(2):
        started = await gate.client.get("/oauth2/start?rd=/x", allow_redirects=False)
        assert started.status == 302

    refused = await gate.client.get("/oauth2/start?rd=/x", allow_redirects=False)

    assert refused.status == 429
    assert refused.headers["Retry-After"] == "30"
    assert "Set-Cookie" not in refused.headers
    assert (await refused.json())["reason"] == "rate_limited"
    assert gate.metric(LIMITED, limit="sign_in") == 1


async def test_callbacks_past_the_limit_get_429(start_gate: StartGate) -> None:
    """Callbacks are limited on their own: a flood of forged callbacks stops at the limit."""
    gate = await start_gate(rate_limits=RateLimitSettings(callback_per_minute=3))
    statuses = [
        (await gate.client.get("/oauth2/callback?code=x&state=forged")).status for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    assert gate.metric(LIMITED, limit="callback") == 1


async def test_failed_authentications_past_the_limit_get_429(start_gate: StartGate) -> None:
    """A client that keeps failing authentication gets 429 once past the limit."""
    gate = await start_gate(rate_limits=RateLimitSettings(failed_auth_per_minute=3))
    bad = {"Authorization": "Bearer not.a.jwt"}
    statuses = [(await gate.client.get("/admin", headers=bad)).status for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert gate.metric(LIMITED, limit="failed_auth") == 2
    assert gate.upstream.calls == 0


async def test_identified_requests_are_never_limited(start_gate: StartGate) -> None:
    """From a client that has used up its 401s, a valid token still goes through, every time;
    a denied (403) request is not a failed authentication either."""
    gate = await start_gate(rate_limits=RateLimitSettings(failed_auth_per_minute=1))
    assert (await gate.client.get("/admin")).status == 401
    assert (await gate.client.get("/admin")).status == 429

    allowed = [
        (await gate.client.get("/admin", headers=gate.bearer(groups=["admins"]))).status
        for _ in range(5)
    ]
    denied = (await gate.client.get("/admin", headers=gate.bearer(groups=["eng"]))).status

    assert allowed == [200] * 5
    assert denied == 403


async def test_forward_auth_keeps_its_401(start_gate: StartGate) -> None:
    """nginx auth_request turns any status but 2xx, 401 and 403 into a 500, so forward-auth
    answers past the limit stay 401 (the gateway limits its own clients)."""
    gate = await start_gate(
        rate_limits=RateLimitSettings(failed_auth_per_minute=1),
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    headers = {"X-Original-URI": "/admin"}
    statuses = [(await gate.client.get("/oauth2/auth", headers=headers)).status for _ in range(3)]
    assert statuses == [401, 401, 401]


async def test_limits_set_to_zero_are_off(start_gate: StartGate) -> None:
    """`0` turns a limit off."""
    gate: Gate = await start_gate(rate_limits=RateLimitSettings(failed_auth_per_minute=0))
    statuses = {(await gate.client.get("/admin")).status for _ in range(20)}
    assert statuses == {401}
