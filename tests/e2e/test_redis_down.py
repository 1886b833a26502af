"""With Redis down, every request that needs it is refused with a clean 503, never a 500, and
nothing is forwarded; requests that need no session are unaffected."""

from __future__ import annotations

from proxy.config.model import RedisSettings, Secret, SessionSettings, SessionStoreKind
from tests.e2e.redis_fixture import RedisServer
from tests.support.gate import StartGate
from tests.support.settings import SESSION_SECRET
from tests.support.signed_in import cookie_header, sign_in


async def test_redis_down_is_503_at_every_endpoint_that_needs_it(
    start_gate: StartGate, redis_server: RedisServer
) -> None:
    """A session request and a back-channel logout answer 503 while Redis is gone; a bearer
    token still passes, and sign-out still deletes the browser's cookie."""
    session = SessionSettings(
        secrets=(Secret(SESSION_SECRET),),
        store=SessionStoreKind.REDIS,
        redis=RedisSettings(url=redis_server.url),
    )
    gate = await start_gate(session=session)
    headers = cookie_header(await sign_in(gate))
    calls = gate.upstream.calls
    redis_server.stop()

    assert (await gate.client.get("/admin", headers=headers)).status == 503
    logout = gate.issuer.logout_token(sub="alice", jti="logout-while-down")
    response = await gate.client.post("/oauth2/backchannel_logout", data={"logout_token": logout})
    assert response.status == 503
    signed_out = await gate.client.get("/oauth2/sign_out", headers=headers, allow_redirects=False)
    assert signed_out.status == 302
    assert gate.upstream.calls == calls, "nothing was forwarded while Redis was down"
    assert (await gate.client.get("/api", headers=gate.bearer())).status == 200
