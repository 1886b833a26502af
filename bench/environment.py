"""What the numbers were taken on: the machine, its load, and every program's version."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Final

from bench.apache import APACHE
from bench.nginx import NGINX
from bench.wrk import WRK

_REPO: Final = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    date: str
    cores: int
    cpu: str
    memory_gb: float
    kernel: str
    load: str
    """The 1/5/15-minute load averages when the run started (other work skews the numbers)."""
    versions: tuple[tuple[str, str], ...]


def _output(command: list[str]) -> str:
    try:
        completed = subprocess.run(  # noqa: S603 (version queries of the programs benchmarked)
            command, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return (completed.stdout + completed.stderr).strip()


def _search(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    return found.group(1) if found else "unknown"


def _package(name: str) -> str:
    return _output(["dpkg-query", "-W", "-f=${Version}", name]) or "unknown"


def _distribution(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _idgate() -> str:
    from proxy import __version__  # noqa: PLC0415 (the benchmarked tree, not an installed copy)

    commit = _output(["git", "-C", str(_REPO), "rev-parse", "--short", "HEAD"]) or "no git"
    dirty = _output(["git", "-C", str(_REPO), "status", "--porcelain", "--", "proxy"])
    return f"{__version__} ({commit}{', proxy/ modified' if dirty else ''})"


def _cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text()
    return _search(r"model name\s*:\s*(.+)", text)


def _memory_gb() -> float:
    kib = int(_search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()))
    return round(kib / 1024 / 1024, 1)


def describe() -> Environment:
    versions = (
        ("idgate", _idgate()),
        ("Python", platform.python_version()),
        ("aiohttp", _distribution("aiohttp")),
        ("httptools", _distribution("httptools")),
        ("joserfc", _distribution("joserfc")),
        ("cryptography", _distribution("cryptography")),
        ("uvloop", _distribution("uvloop")),
        ("nginx", _search(r"nginx/(\S+)", _output([NGINX, "-v"]))),
        ("Apache httpd", _search(r"Apache/(\S+)", _output([APACHE, "-v"]))),
        ("mod_auth_openidc", _package("libapache2-mod-auth-openidc")),
        ("wrk", _search(r"wrk (\S+)", _output([WRK, "-v"]))),
        ("curl", _search(r"curl (\S+)", _output(["curl", "--version"]))),
    )
    load = Path("/proc/loadavg").read_text().split()[:3]
    return Environment(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        cores=len(os.sched_getaffinity(0)),
        cpu=_cpu_model(),
        memory_gb=_memory_gb(),
        kernel=platform.release(),
        load=" ".join(load),
        versions=versions,
    )
