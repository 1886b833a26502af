"""CPU time and memory of a server's whole process tree, read from /proc.

A server under test is the process the harness started plus every descendant (nginx and Apache
workers, idgate's supervisor and workers). CPU is utime + stime of each live process plus
cutime + cstime (children it has already reaped), so a worker that exits between two samples
still counts: its time moves into its parent's cumulative fields.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_PROC: Final = Path("/proc")
_TICKS_PER_SECOND: Final = os.sysconf("SC_CLK_TCK")
# Fields of /proc/<pid>/stat after the ")" that closes `comm` (proc(5) numbers them from 1;
# the first one after it, `state`, is field 3).
_PPID: Final = 4 - 3
_UTIME: Final = 14 - 3
_CUTIME: Final = 16 - 3


@dataclass(frozen=True, slots=True, kw_only=True)
class StatLine:
    parent: int
    user_ticks: int
    """utime + cutime."""
    system_ticks: int
    """stime + cstime."""


def parse_stat(text: str) -> StatLine:
    """The parent pid and CPU ticks of one /proc/<pid>/stat line (`comm` may hold spaces)."""
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[_UTIME : _CUTIME + 2])
    return StatLine(
        parent=int(fields[_PPID]), user_ticks=utime + cutime, system_ticks=stime + cstime
    )


def parse_rss_bytes(status: str) -> int:
    """VmRSS of one /proc/<pid>/status text; 0 for a process without one (a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _read_stats() -> dict[int, StatLine]:
    stats: dict[int, StatLine] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError):  # the process ended while we looked
            continue
    return stats


def tree(root: int, parents: Mapping[int, int]) -> list[int]:
    """`root` and its descendants, given every process's parent."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    cpu_seconds: float
    """User and system time together."""
    system_seconds: float
    rss_bytes: Mapping[int, int]
    """Resident memory of every process of the tree, by pid."""


def usage(root: int) -> Usage:
    """CPU seconds used so far and current RSS of `root`'s process tree."""
    stats = _read_stats()
    pids = [pid for pid in tree(root, {pid: s.parent for pid, s in stats.items()}) if pid in stats]
    system = sum(stats[pid].system_ticks for pid in pids)
    user = sum(stats[pid].user_ticks for pid in pids)
    return Usage(
        cpu_seconds=(user + system) / _TICKS_PER_SECOND,
        system_seconds=system / _TICKS_PER_SECOND,
        rss_bytes={pid: rss_bytes(pid) for pid in pids},
    )


def combined(one: Usage, other: Usage) -> Usage:
    """Two process trees counted as one server."""
    return Usage(
        cpu_seconds=one.cpu_seconds + other.cpu_seconds,
        system_seconds=one.system_seconds + other.system_seconds,
        rss_bytes={**one.rss_bytes, **other.rss_bytes},
    )


def parse_machine_busy(stat: str) -> int:
    """Ticks every core spent not idle, from the `cpu` line of /proc/stat."""
    fields = [int(value) for value in stat.splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot, all cores together."""
    return parse_machine_busy((_PROC / "stat").read_text()) / _TICKS_PER_SECOND


def rss_bytes(pid: int) -> int:
    try:
        return parse_rss_bytes((_PROC / str(pid) / "status").read_text())
    except OSError:
        return 0


def peak_rss(samples: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The largest RSS each pid reached over several samples."""
    peak: dict[int, int] = {}
    for sample in samples:
        for pid, value in sample.items():
            peak[pid] = max(peak.get(pid, 0), value)
    return peak
