"""In-process cost of a bearer token idgate has never seen against one it has cached.

`python -m bench.new_token [--tokens N] [--rounds R]`: builds idgate's runtime from the benchmark's
config (`bench/in_process.py`), mints N distinct tokens, then
times what a request with a token costs before forwarding: identify (verify or cache), the
policy, and the identity headers with the signed assertion. Once over N new tokens, once over one
token N times; prints CPU µs per request (process time, so other
programs on the machine do not count) for both and the difference, the best of R rounds.
Everything runs with the real verifier, signer and policy code; no sockets on the timed path.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from bench.in_process import benchmark_runtime, request
from proxy.runtime import Runtime


async def _timed(runtime: Runtime, tokens: Sequence[str]) -> float:
    started = time.process_time()
    for token in tokens:
        await request(runtime, token)
    return (time.process_time() - started) / len(tokens) * 1e6


async def measure(count: int, rounds: int) -> tuple[float, float]:
    """(µs per new token, µs per cached token), each the best of `rounds`."""
    new_costs: list[float] = []
    cached_costs: list[float] = []
    async with benchmark_runtime() as (runtime, issuer):
        tokens = issuer.mint_many(count * rounds, prefix="new", processes=2)
        same = [issuer.token("cached-user")] * count
        await request(runtime, same[0])
        for index in range(rounds):
            new_costs.append(await _timed(runtime, tokens[index * count : (index + 1) * count]))
            cached_costs.append(await _timed(runtime, same))
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
