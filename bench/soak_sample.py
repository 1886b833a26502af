"""Once a second, the resident memory and open file descriptors of every idgate process."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import procfs

_PROC: Final = Path("/proc")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    at: float
    """Seconds since sampling started."""
    rss_bytes: dict[int, int]
    open_fds: dict[int, int]


def open_fds(pid: int) -> int:
    try:
        return sum(1 for _ in (_PROC / str(pid) / "fd").iterdir())
    except OSError:
        return 0


def role(pid: int, root: int) -> str:
    """What an idgate process is, from its command line: the table names roles, not pids."""
    if pid == root:
        return "supervisor"
    try:
        command = (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "gone"
    if b"resource_tracker" in command:
        return "resource tracker"
    return "worker" if b"multiprocessing" in command else "other"


def take(root: int, at: float) -> Sample:
    rss = procfs.usage(root).rss_bytes
    return Sample(at=at, rss_bytes=dict(rss), open_fds={pid: open_fds(pid) for pid in rss})


async def sample_every_second(root: int, stop: asyncio.Event) -> list[Sample]:
    samples: list[Sample] = []
    started = time.monotonic()
    while not stop.is_set():
        samples.append(await asyncio.to_thread(take, root, time.monotonic() - started))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            continue
    return samples


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """One process over the run, after the warm-up."""

    pid: int
    role: str
    rss_first_mb: float
    """Median RSS over the first window."""
    rss_last_mb: float
    """Median RSS over the last window."""
    rss_max_mb: float
    fds_min: int
    fds_max: int
    fds_last: int
    rss_by_tenth_mb: tuple[float, ...]
    """Median RSS over each tenth of the whole run (warm-up included): where growth stops."""


def drifts(
    samples: list[Sample], *, warmup: float, window: float, roles: dict[int, str]
) -> list[Drift]:
    """Per process: how its memory and descriptors moved between the first and last windows."""
    settled = [sample for sample in samples if sample.at >= warmup]
    if not settled:
        return []
    end = settled[-1].at
    first = [s for s in settled if s.at < warmup + window]
    last = [s for s in settled if s.at > end - window]
    pids = sorted(set.intersection(*(set(s.rss_bytes) for s in settled)))
    mib = 1024 * 1024
    return [
        Drift(
            pid=pid,
            role=roles.get(pid, "other"),
            rss_first_mb=statistics.median(s.rss_bytes[pid] for s in first) / mib,
            rss_last_mb=statistics.median(s.rss_bytes[pid] for s in last) / mib,
            rss_max_mb=max(s.rss_bytes[pid] for s in settled) / mib,
            fds_min=min(s.open_fds[pid] for s in settled),
            fds_max=max(s.open_fds[pid] for s in settled),
            fds_last=settled[-1].open_fds[pid],
            rss_by_tenth_mb=_by_tenth(samples, pid),
        )
        for pid in pids
    ]


def _by_tenth(samples: list[Sample], pid: int) -> tuple[float, ...]:
    end = samples[-1].at or 1.0
    tenths: list[list[int]] = [[] for _ in range(10)]
    for sample in samples:
        if pid in sample.rss_bytes:
            tenths[min(9, int(10 * sample.at / end))].append(sample.rss_bytes[pid])
    return tuple(round(statistics.median(values) / (1024 * 1024), 1) for values in tenths if values)
