"""In-process cost of a bearer token idgate has never seen against one it has cached.

`python -m bench.new_token [--tokens N] [--rounds R]`: builds idgate's runtime from the benchmark's
config (its JWKS served by an aiohttp app on 127.0.0.1 port 0), mints N distinct tokens, then
times what a request with a token costs before forwarding: identify (verify or cache), the
policy, and the identity headers with the signed assertion. Once over N new tokens, once over one
token N times; prints CPU µs per request (process time, so other
programs on the machine do not count) for both and the difference, the best of R rounds.
Everything runs with the real verifier, signer and policy code; no sockets on the timed path.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Sequence

from aiohttp import ClientSession, web
from prometheus_client import CollectorRegistry

from bench import idgate
from bench.tokens import Issuer
from proxy.config.load import parse_settings
from proxy.forward.identity_headers import identity_headers
from proxy.observability.metrics import Metrics
from proxy.policy.decision import Outcome
from proxy.policy.evaluate import evaluate
from proxy.runtime import Runtime, build_runtime


async def _request(runtime: Runtime, token: str) -> None:
    """What idgate does for a bearer request to the benchmark route before forwarding it."""
    route = runtime.routes.match(host="127.0.0.1", path="/bench/x", method="GET")
    assert route is not None
    principal = await runtime.verifier.verify(token, accepted=route.issuers)
    if evaluate(route, principal).outcome is not Outcome.ALLOW:
        raise SystemExit("the benchmark token was refused: the numbers would mean nothing")
    identity_headers(principal, route, runtime.signer)


async def _timed(runtime: Runtime, tokens: Sequence[str]) -> float:
    started = time.process_time()
    for token in tokens:
        await _request(runtime, token)
    return (time.process_time() - started) / len(tokens) * 1e6


async def measure(count: int, rounds: int) -> tuple[float, float]:
    """(µs per new token, µs per cached token), each the best of `rounds`."""
    # The issuer's URL holds the port, so the JWKS is filled in once the app listens.
    jwks: dict[str, object] = {}

    async def serve_jwks(_: web.Request) -> web.Response:
        return web.json_response(jwks)

    issuer_app = web.Application()
    issuer_app.router.add_get("/jwks.json", serve_jwks)
    runner = web.AppRunner(issuer_app)
    await runner.setup()
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
    tokens = issuer.mint_many(count * rounds, prefix="new", processes=2)
    same = [issuer.token("cached-user")] * count
    new_costs: list[float] = []
    cached_costs: list[float] = []
    try:
        async with ClientSession() as http:
            metrics = Metrics(CollectorRegistry())
            runtime = await build_runtime(settings, http=http, metrics=metrics)
            await _request(runtime, same[0])
            for index in range(rounds):
                new_costs.append(await _timed(runtime, tokens[index * count : (index + 1) * count]))
                cached_costs.append(await _timed(runtime, same))
    finally:
        await runner.cleanup()
    return min(new_costs), min(cached_costs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.new_token", description=__doc__)
    parser.add_argument("--tokens", type=int, default=2_000, help="tokens per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    new, cached = asyncio.run(measure(args.tokens, args.rounds))
    print(  # noqa: T201 (the tool's output)
        f"new token {new:.1f} µs, cached token {cached:.1f} µs, difference {new - cached:.1f} µs "
        f"(best of {args.rounds} rounds of {args.tokens:,})",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
