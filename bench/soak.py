"""`bench/run --soak MINUTES`: idgate under a long mixed workload, its memory and descriptors
sampled every second; the result is the `## Soak` section of BENCHMARKS.md.

idgate runs as in the benchmark (bench/idgate.py: a worker per core, decision log and metrics
on), in front of bench/soak_upstream.py; bench/soak_load.py is the workload. A soak passes when
every outcome was one its scenario may have (no 5xx at all), nothing was forwarded without a
decision, and memory and descriptors stayed flat, which the report puts in numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import re
import sys
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import idgate
from bench.servers import Server, Servers
from bench.session_cookie import cookie_header
from bench.soak_load import Target, run_load, unexpected
from bench.soak_sample import Drift, Sample, drifts, role, sample_every_second
from bench.tokens import Issuer
from proxy.demo.ports import free_loopback_ports

AUDIENCE: Final = "https://api.soak.test"
#: Run by path: the servers' working directory is the run directory, not the repository.
_UPSTREAM_SCRIPT: Final = Path(__file__).with_name("soak_upstream.py")
SECTION: Final = "## Soak"
#: Memory is compared between the first and the last minute, after a minute of warm-up (caches
#: fill, the allocator settles); shorter runs scale these down.
_WARMUP_SHARE: Final = 0.1
_WINDOW_SHARE: Final = 0.1
_FORWARDED_WITHOUT_DECISION: Final = re.compile(
    r"^idgate_forwarded_without_decision_total (\S+)$", re.MULTILINE
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakResult:
    seconds: float
    concurrency: int
    tally: Counter[tuple[str, str]]
    drifts: list[Drift]
    forwarded_without_decision: float
    samples: int

    @property
    def passed(self) -> bool:
        return not unexpected(self.tally) and self.forwarded_without_decision == 0


def soak(workdir: Path, *, seconds: float, concurrency: int) -> SoakResult:
    with Servers(workdir) as servers:
        upstream_port = free_loopback_ports(1)[0]
        issuer = Issuer(issuer=f"http://127.0.0.1:{upstream_port}", audience=AUDIENCE)
        jwks = workdir / "jwks.json"
        jwks.write_text(json.dumps(issuer.jwks()))
        servers.start(
            "upstream",
            [sys.executable, str(_UPSTREAM_SCRIPT), str(upstream_port), str(jwks)],
            port=upstream_port,
        )
        secret = idgate.new_secret()
        proxy, metrics_port = idgate.start(
            servers,
            name="idgate",
            issuer=issuer.issuer,
            audience=AUDIENCE,
            upstream=f"http://127.0.0.1:{upstream_port}",
            route_count=1,
            secret=secret,
            # The soak's issuer has no token endpoint: a session falling due for its refresh
            # would be refused (503) for the rest of the run, which is no soak of idgate.
            session={"refresh_interval": "1h"},
        )
        target = Target(
            host="127.0.0.1",
            port=proxy.port,
            same_token=issuer.token("soak-user"),
            denied_token=issuer.token("soak-outsider", groups=["nobody"]),
            session_cookie=cookie_header(
                workdir / "idgate.yaml", secret=secret, issuer=issuer, subject="soak-browser"
            ),
            distinct_tokens=issuer.mint_many(
                max(100, int(seconds * 40)), prefix="soak", processes=2
            ),
        )
        tally, samples = asyncio.run(_load_and_sample(target, proxy, seconds, concurrency))
        metrics = _scrape(metrics_port)
        roles = {pid: role(pid, proxy.process.pid) for pid in samples[-1].rss_bytes}
    warmup = seconds * _WARMUP_SHARE
    return SoakResult(
        seconds=seconds,
        concurrency=concurrency,
        tally=tally,
        drifts=drifts(
            samples, warmup=warmup, window=max(1.0, seconds * _WINDOW_SHARE), roles=roles
        ),
        forwarded_without_decision=_forwarded_without_decision(metrics),
        samples=len(samples),
    )


async def _load_and_sample(
    target: Target, proxy: Server, seconds: float, concurrency: int
) -> tuple[Counter[tuple[str, str]], list[Sample]]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_every_second(proxy.process.pid, stop))
    trimmer = asyncio.create_task(_trim_logs(proxy, stop))
    try:
        tally = await run_load(target, seconds=seconds, concurrency=concurrency)
    finally:
        stop.set()
    await trimmer
    return tally, await sampler


async def _trim_logs(proxy: Server, stop: asyncio.Event) -> None:
    """The decision log grows by megabytes a minute under load: emptied once a minute."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 60.0)
        proxy.truncate_logs()


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


def _forwarded_without_decision(metrics: str) -> float:
    found = _FORWARDED_WITHOUT_DECISION.search(metrics)
    return float(found.group(1)) if found else 0.0


def render(result: SoakResult) -> str:
    """The `## Soak` section of BENCHMARKS.md."""
    minutes = result.seconds / 60
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION,
        "",
        f"`bench/run --soak {minutes:g}` ({when}): {minutes:g} minutes, {result.concurrency} "
        f"concurrent clients, {result.samples} samples of every idgate process (supervisor and "
        "workers). Verdict: " + ("**pass**" if result.passed else "**fail**") + ".",
        "",
        "| scenario | requests | outcomes |",
        "|---|---:|---|",
    ]
    by_scenario: dict[str, Counter[str]] = {}
    for (name, outcome), count in result.tally.items():
        by_scenario.setdefault(name, Counter())[outcome] += count
    for name, outcomes in sorted(by_scenario.items()):
        spread = ", ".join(f"{outcome}: {count:,}" for outcome, count in outcomes.most_common())
        lines.append(f"| {name} | {sum(outcomes.values()):,} | {spread} |")
    odd = unexpected(result.tally)
    lines += [
        "",
        (
            f"Unexpected outcomes (5xx included): {sum(odd.values())}; "
            f"`idgate_forwarded_without_decision_total`: {result.forwarded_without_decision:g}."
        ),
        "",
        (
            "| process | RSS first window (MiB) | RSS last window (MiB) | change | RSS max "
            "| open FDs min-max (last) |"
        ),
        "|---|---:|---:|---:|---:|---|",
    ]
    for drift in result.drifts:
        change = drift.rss_last_mb - drift.rss_first_mb
        lines.append(
            f"| {drift.role} | {drift.rss_first_mb:.1f} | {drift.rss_last_mb:.1f} | "
            f"{change:+.1f} | {drift.rss_max_mb:.1f} | {drift.fds_min}-{drift.fds_max} "
            f"({drift.fds_last}) |"
        )
    lines += ["", "RSS (MiB) over each tenth of the run, per worker:", ""]
    lines += [
        f"- {drift.role}: " + " · ".join(f"{value:.1f}" for value in drift.rss_by_tenth_mb)
        for drift in result.drifts
        if drift.role == "worker"
    ]
    lines += [
        "",
        (
            "Windows: the first and the last tenth of the run, after a tenth of warm-up. Slow "
            "clients dribble a header byte every 0.2 s for up to 3 s; open FDs count every "
            "socket and file of the process at the moment of the sample. Memory grows while the "
            "bounded caches fill (10,000 verified bearer tokens per worker, the distinct-token "
            "clients supply about 50 new ones a second) and must be level once they are full."
        ),
        "",
    ]
    return "\n".join(lines)


def with_section(document: str, section: str) -> str:
    """`document` with its `## Soak` section replaced by `section` (or `section` appended)."""
    start = document.find(f"\n{SECTION}\n")
    if start == -1:
        return document.rstrip("\n") + "\n\n" + section
    following = document.find("\n## ", start + 1)
    rest = "" if following == -1 else document[following:]
    return document[: start + 1] + section + rest


def kept_section(document: str) -> str | None:
    """The `## Soak` section of an existing BENCHMARKS.md, so a benchmark run keeps it."""
    start = document.find(f"\n{SECTION}\n")
    if start == -1:
        return None
    following = document.find("\n## ", start + 1)
    return document[start + 1 : None if following == -1 else following + 1]
