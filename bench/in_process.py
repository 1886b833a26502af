"""idgate's runtime in this process, built from the benchmark's config, for the in-process tools
(`bench/new_token.py`, `bench/memory.py`): its issuer's JWKS is served by an aiohttp app on
127.0.0.1 port 0, and `request` does what a bearer request to the benchmark route costs before
forwarding, with the real verifier, policy and signer."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

from aiohttp import ClientSession, web
from prometheus_client import CollectorRegistry

from bench import idgate
from bench.tokens import Issuer
from proxy.config.load import parse_settings
from proxy.config.model import Route
from proxy.forward.identity_headers import identity_headers
from proxy.identity.principal import Principal
from proxy.observability.metrics import Metrics
from proxy.policy.decision import Outcome
from proxy.policy.evaluate import evaluate
from proxy.runtime import Runtime, build_runtime

STAGES: Final = ("route match", "identify", "policy", "identity headers")


@dataclass(slots=True)
class StageClock:
    """Wall nanoseconds spent in each stage of `request`, summed over requests."""

    spent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    requests: int = 0

    def per_request_us(self) -> dict[str, float]:
        return {stage: ns / self.requests / 1e3 for stage, ns in self.spent.items()}


def _route(runtime: Runtime) -> Route:
    route = runtime.routes.match(host="127.0.0.1", path="/bench/x", method="GET")
    assert route is not None
    return route


def _check_allowed(route: Route, principal: Principal) -> None:
    if evaluate(route, principal).outcome is not Outcome.ALLOW:
        raise SystemExit("the benchmark token was refused: the numbers would mean nothing")


async def identify(runtime: Runtime, token: str) -> Principal:
    """A bearer request's identity, verified (or cached) and allowed by the benchmark route."""
    route = _route(runtime)
    principal = await runtime.verifier.verify(token, accepted=route.issuers)
    _check_allowed(route, principal)
    return principal


async def request(runtime: Runtime, token: str, clock: StageClock | None = None) -> None:
    """What idgate does for a bearer request to the benchmark route before forwarding it;
    with `clock`, each stage's wall time added to it."""
    now = time.perf_counter_ns
    started = now()
    route = _route(runtime)
    matched = now()
    principal = await runtime.verifier.verify(token, accepted=route.issuers)
    identified = now()
    _check_allowed(route, principal)
    decided = now()
    identity_headers(principal, route, runtime.signer)
    if clock is not None:
        marks = (started, matched, identified, decided, now())
        for stage, (start, end) in zip(STAGES, pairwise(marks), strict=True):
            clock.spent[stage] += end - start
        clock.requests += 1


@asynccontextmanager
async def benchmark_runtime() -> AsyncIterator[tuple[Runtime, Issuer]]:
    """A started runtime of the benchmark's config (10 routes) and the issuer it trusts."""
    # The issuer's URL holds the port, so the JWKS is filled in once the app listens.
    jwks: dict[str, object] = {}

    async def serve_jwks(_: web.Request) -> web.Response:
        return web.json_response(jwks)

    issuer_app = web.Application()
    issuer_app.router.add_get("/jwks.json", serve_jwks)
    runner = web.AppRunner(issuer_app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        issuer = Issuer(issuer=f"http://127.0.0.1:{port}", audience="https://api.bench.test")
        jwks |= issuer.jwks()
        document = idgate.document(
            port=0,
            metrics_port=0,
            issuer=issuer.issuer,
            audience=issuer.audience,
            upstream="http://127.0.0.1:9",
            route_count=10,
        )
        settings = parse_settings(document, {idgate.SECRET_VARIABLE: secrets.token_urlsafe(32)})
        async with ClientSession() as http:
            metrics = Metrics(CollectorRegistry())
            yield await build_runtime(settings, http=http, metrics=metrics), issuer
    finally:
        await runner.cleanup()
