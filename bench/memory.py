"""Where an idgate worker's memory goes: its modules, its runtime, and each cached user.

`python -m bench.memory [--tokens N]`: prints the resident set size (VmRSS) of a fresh
interpreter that imports what a worker imports (`proxy.server.run`, `proxy.cli`) and which of the
heavy optional packages that loaded; then, in this process, builds idgate's runtime from the
benchmark's config (`bench/in_process.py`), verifies N distinct tokens (the validated-token
cache) and then signs an assertion for each (the assertion cache), printing RSS after each step
and the cost per cached identity and per cached assertion. N defaults to the caches' 10,000, as
the benchmark's 10,000-user workload fills them. RSS after a full garbage collection; this
process also holds the token minting's modules, so its figures sit a few MB above a worker's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.in_process import benchmark_runtime, identify, request
from bench.procfs import parse_rss_bytes

_MIB: Final = 1024 * 1024
#: Packages a worker may load only for some configs.
_OPTIONAL: Final = ("redis", "opentelemetry", "authlib")
_WORKER_IMPORTS: Final = f"""
import sys
import proxy.cli, proxy.server.run
print(open("/proc/self/status").read())
print(*[name for name in {_OPTIONAL!r} if name in sys.modules])
"""


def _own_rss() -> int:
    gc.collect()
    return parse_rss_bytes(Path("/proc/self/status").read_text())


@dataclass(frozen=True, slots=True, kw_only=True)
class Footprint:
    worker_imports: int
    optional_loaded: tuple[str, ...]
    runtime: int
    identities: int
    assertions: int
    tokens: int


def worker_imports() -> tuple[int, tuple[str, ...]]:
    """RSS of a fresh interpreter after a worker's imports, and the optional packages loaded."""
    result = subprocess.run(  # noqa: S603 (this Python, with the code above)
        [sys.executable, "-c", _WORKER_IMPORTS],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    status, _, loaded = result.stdout.rpartition("\n\n")
    return parse_rss_bytes(status), tuple(loaded.split())


async def measure(count: int) -> Footprint:
    imports, loaded = worker_imports()
    async with benchmark_runtime() as (runtime, issuer):
        tokens = issuer.mint_many(count, prefix="user", processes=2)
        await request(runtime, issuer.token("warm-up"))
        started = _own_rss()
        for token in tokens:
            await identify(runtime, token)
        identified = _own_rss()
        for token in tokens:
            await request(runtime, token)
        signed = _own_rss()
    return Footprint(
        worker_imports=imports,
        optional_loaded=loaded,
        runtime=started,
        identities=identified,
        assertions=signed,
        tokens=count,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--tokens", type=int, default=10_000, help="distinct tokens (users)")
    args = parser.parse_args(argv)
    found = asyncio.run(measure(args.tokens))
    per_identity = (found.identities - found.runtime) / found.tokens
    per_assertion = (found.assertions - found.identities) / found.tokens
    print(  # noqa: T201 (the tool's output)
        f"worker imports {found.worker_imports / _MIB:.1f} MB "
        f"(optional packages loaded: {', '.join(found.optional_loaded) or 'none'})\n"
        f"runtime built {found.runtime / _MIB:.1f} MB\n"
        f"{found.tokens:,} identities cached {found.identities / _MIB:.1f} MB "
        f"({per_identity:,.0f} B each)\n"
        f"{found.tokens:,} assertions cached {found.assertions / _MIB:.1f} MB "
        f"({per_assertion:,.0f} B each)",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
