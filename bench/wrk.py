"""One wrk run: the command, and its result read from the line bench/wrk.lua prints."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

WRK: Final = "/usr/bin/wrk"
SCRIPT: Final = Path(__file__).with_name("wrk.lua")
_MARK: Final = "BENCH "
#: wrk's default (2 s) would count Apache's slowest answers at -c256 as timeouts, not latency.
_TIMEOUT: Final = "5s"


class WrkFailed(RuntimeError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    """Connect, read and write errors and timeouts."""
    bad_status: int
    """Responses that are not 2xx or 3xx."""
    tokens_sent: int
    """Requests that carried a token from the distinct-token file (0 for other workloads)."""
    tokens_max_thread: int
    """The most tokens one wrk thread sent (how far into its share of the file it got)."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        return self.socket_errors + self.bad_status


def parse_output(stdout: str) -> WrkResult:
    """The result line of bench/wrk.lua's done()."""
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            raw = json.loads(line[len(_MARK) :])
            return WrkResult(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                p50_ms=raw["p50_us"] / 1e3,
                p99_ms=raw["p99_us"] / 1e3,
                socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
                bad_status=raw["status"],
                tokens_sent=raw["tokens_sent"],
                tokens_max_thread=raw["tokens_max_thread"],
            )
    raise WrkFailed(f"wrk printed no result line:\n{stdout[-2000:]}")


def run(
    url: str,
    *,
    connections: int,
    threads: int,
    seconds: float,
    headers: Mapping[str, str],
    tokens: tuple[Path, int] | None = None,
) -> WrkResult:
    """`tokens`: a file of distinct tokens and the position in each thread's share to start at."""
    command = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        f"--timeout={_TIMEOUT}",
        "-s",
        str(SCRIPT),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    if tokens is not None:
        path, start = tokens
        environ |= {
            "BENCH_TOKENS": str(path),
            "BENCH_THREADS": str(threads),
            "BENCH_TOKENS_START": str(start),
        }
    completed = subprocess.run(  # noqa: S603 (wrk, with arguments the harness built)
        [*command, url],
        env=environ,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    if completed.returncode != 0:
        raise WrkFailed(f"wrk exited {completed.returncode}: {completed.stderr[-2000:]}")
    return parse_output(completed.stdout)
