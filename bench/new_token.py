"""In-process cost of a bearer token idgate has never seen against one it has cached.

`python -m bench.new_token [--tokens N] [--rounds R] [--stages]`: builds idgate's runtime from
the benchmark's config (`bench/in_process.py`), mints N distinct tokens, then times what a
request with a token costs before forwarding: identify (verify or cache), the policy, and the
identity headers with the signed assertion. Once over N new tokens, once over one token N times;
prints CPU µs per request (process time, so other programs on the machine do not count) for both
and the difference, the best of R rounds.
Everything runs with the real verifier, signer and policy code; no sockets on the timed path.

`--stages` also prints each stage's share, new against cached (wall time per stage, so run it
on a quiet machine, ideally pinned: `taskset -c 0`), next to the two signature operations timed
alone, back to back: what a stage costs beyond them is the Python around them, and what they
cost inside the request beyond their time alone is the price of running among other code.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from bench.in_process import STAGES, StageClock, benchmark_runtime, request
from bench.tokens import Issuer
from proxy.runtime import Runtime

_OPERATIONS: Final = 2_000


async def _timed(runtime: Runtime, tokens: Sequence[str], clock: StageClock) -> float:
    started = time.process_time()
    for token in tokens:
        await request(runtime, token, clock)
    return (time.process_time() - started) / len(tokens) * 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class Costs:
    new: float
    """CPU µs per request with a new token, the best round."""
    cached: float
    """The same with one cached token."""
    new_stages: dict[str, float]
    """Wall µs per request in each stage with new tokens, over all rounds."""
    cached_stages: dict[str, float]


async def measure(count: int, rounds: int) -> Costs:
    """New against cached tokens, `rounds` rounds of `count` requests each."""
    new_costs: list[float] = []
    cached_costs: list[float] = []
    new_clock, cached_clock = StageClock(), StageClock()
    async with benchmark_runtime() as (runtime, issuer):
        tokens = issuer.mint_many(count * rounds, prefix="new", processes=2)
        same = [issuer.token("cached-user")] * count
        await request(runtime, same[0])
        for index in range(rounds):
            batch = tokens[index * count : (index + 1) * count]
            new_costs.append(await _timed(runtime, batch, new_clock))
            cached_costs.append(await _timed(runtime, same, cached_clock))
    return Costs(
        new=min(new_costs),
        cached=min(cached_costs),
        new_stages=new_clock.per_request_us(),
        cached_stages=cached_clock.per_request_us(),
    )


def signatures_alone(issuer: Issuer) -> tuple[float, float]:
    """CPU µs of one RS256 verification of a benchmark token and of one ES256 signature of an
    assertion's size, each done back to back with nothing in between, as cryptography does them
    for idgate."""
    token = issuer.token("alone")
    signing_input, _, _ = token.rpartition(".")
    message = signing_input.encode()
    signature = issuer.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    public = issuer.key.public_key()
    verify_us = _cpu_us(
        lambda: public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    )
    assertion_key = ec.generate_private_key(ec.SECP256R1())
    es256 = ec.ECDSA(hashes.SHA256())
    sign_us = _cpu_us(lambda: assertion_key.sign(message[:400], es256))
    return verify_us, sign_us


def _cpu_us(operation: Callable[[], object]) -> float:
    started = time.process_time()
    for _ in range(_OPERATIONS):
        operation()
    return (time.process_time() - started) / _OPERATIONS * 1e6


def _stage_table(costs: Costs) -> str:
    rows = [
        f"  {stage:<17} new {costs.new_stages[stage]:6.1f} µs   cached "
        f"{costs.cached_stages[stage]:6.1f} µs"
        for stage in STAGES
    ]
    verify_us, sign_us = signatures_alone(Issuer(issuer="https://alone.test", audience="alone"))
    rows.append(
        f"  alone, back to back: RS256 verify {verify_us:.1f} µs, ES256 sign {sign_us:.1f} µs"
    )
    return "\n".join(["wall time per stage, all rounds:", *rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.new_token", description=__doc__)
    parser.add_argument("--tokens", type=int, default=2_000, help="tokens per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stages", action="store_true", help="also each stage's cost")
    args = parser.parse_args(argv)
    costs = asyncio.run(measure(args.tokens, args.rounds))
    summary = (
        f"new token {costs.new:.1f} µs, cached token {costs.cached:.1f} µs, difference "
        f"{costs.new - costs.cached:.1f} µs (best of {args.rounds} rounds of {args.tokens:,})"
    )
    lines = [summary]
    if args.stages:
        lines.append(_stage_table(costs))
    print("\n".join(lines), file=sys.stdout)  # noqa: T201 (the tool's output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
