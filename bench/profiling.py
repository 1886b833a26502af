"""`bench/run --profile DIR`: py-spy on idgate's workers while wrk drives one workload.

py-spy samples the supervisor and its workers (`--subprocesses`), only threads that hold the GIL
(`--gil`): Python code running. py-spy's idle detection counts threads parked in a queue or in
epoll as busy, which drowns the real work; with `--gil` the samples are the user-space CPU time,
and what runs with the GIL released (the kernel's side of socket I/O) shows in the system time
that /proc reports next to it. The collapsed stacks are kept for flame graphs and summed by
bench/stacks.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from bench import stacks
from bench.measure import Measurement
from bench.plan import BASELINE, WORKLOADS, Credential, Target, Workload
from bench.stage import DistinctTokens, Stage

PY_SPY: Final = Path(sys.executable).with_name("py-spy")
_RATE: Final = "100"
#: wrk outlasts the profiler by this much, so every sample is taken under load.
_MARGIN_SECONDS: Final = 3.0


class ProfilerMissing(RuntimeError):
    pass


def py_spy() -> str:
    found = PY_SPY if PY_SPY.exists() else shutil.which("py-spy")
    if found is None:
        raise ProfilerMissing("py-spy is not installed: .venv/bin/pip install py-spy")
    return str(found)


def record(pid: int, *, seconds: float, output: Path, load: threading.Thread) -> stacks.Profile:
    """Sample `pid`'s tree for `seconds` while `load` runs; what was seen, summed.

    `load` is started here and must outlast the sampling (run it `seconds` + a margin).
    """
    load.start()
    command = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--gil",
        "--rate",
        _RATE,
        "--duration",
        f"{max(1, round(seconds))}",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    completed = subprocess.run(  # noqa: S603 (py-spy, with arguments the harness built)
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    load.join()
    if completed.returncode != 0 or not output.exists():
        raise RuntimeError(f"py-spy failed ({completed.returncode}): {completed.stderr[-1000:]}")
    with output.open() as lines:
        return stacks.summarize(lines)


def _in_background(
    stage: Stage, distinct: DistinctTokens, workload: Workload, *, seconds: float
) -> tuple[threading.Thread, list[Measurement]]:
    """A thread that runs wrk against idgate, and the list its measurement lands in."""
    done: list[Measurement] = []
    if workload.credential is Credential.DISTINCT_TOKENS:
        distinct.prepare(seconds)
    stage.prime(workload)

    def drive() -> None:
        if workload.credential is Credential.DISTINCT_TOKENS:
            done.append(distinct.run(Target.IDGATE, seconds=seconds))
        else:
            done.append(stage.measure(workload, Target.IDGATE, seconds=seconds))

    return threading.Thread(target=drive, name="wrk"), done


def _cost(done: list[Measurement]) -> str:
    if not done:
        return "(wrk failed)"
    run = done[0]
    user = run.cpu_us_per_request - run.system_us_per_request
    return (
        f"{run.wrk.rps:,.0f} req/s under the profiler; {run.cpu_us_per_request:.0f} µs CPU per "
        f"request: {user:.0f} user, {run.system_us_per_request:.0f} system"
    )


def profile(
    stage: Stage,
    distinct: DistinctTokens,
    directory: Path,
    say: Callable[[str], None],
    *,
    short: bool,
) -> str:
    """py-spy over idgate for each workload idgate serves at -c32, the stacks and summaries
    written to `directory`; the summaries as Markdown (`short`: the top functions only)."""
    directory.mkdir(parents=True, exist_ok=True)
    seconds = stage.options.seconds
    pid = stage.servers[Target.IDGATE].process.pid
    sections = []
    for workload in WORKLOADS:
        if workload.connections != BASELINE.connections or Target.IDGATE not in workload.targets:
            continue
        slug = re.sub(r"[^a-z0-9]+", "-", workload.name.lower()).strip("-")
        load, done = _in_background(stage, distinct, workload, seconds=seconds + _MARGIN_SECONDS)
        say(f"profiling idgate under {workload.name} for {seconds:g} s")
        seen = record(pid, seconds=seconds, output=directory / f"{slug}.collapsed", load=load)
        full = stacks.render(seen)
        (directory / f"{slug}.txt").write_text(full)
        if short:
            sections.append(f"### {workload.name}\n\n{_cost(done)}.\n\n{stacks.brief(seen)}")
        else:
            sections.append(f"## {workload.name}\n\n{_cost(done)}\n\n```\n{full}```\n")
    return "\n".join(sections)
