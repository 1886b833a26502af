"""100 MB up and down through idgate with curl, its workers' memory sampled all the while.

Bodies are streamed, so a worker's resident memory must stay flat however large the body is; the
sampler records each process's RSS every few milliseconds while curl runs.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import procfs
from bench.servers import Server

CURL: Final = "/usr/bin/curl"
_SAMPLE_SECONDS: Final = 0.01


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    direction: str
    size_bytes: int
    seconds: float
    status: int
    complete: bool
    """Every byte arrived: the client's count (download) or the upstream's file (upload)."""
    rss_before: int
    """Largest process RSS of the server just before the transfer."""
    rss_peak: int
    """Largest process RSS of the server while the transfer ran."""

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_before


class _Sampler:
    def __init__(self, root: int) -> None:
        self._root = root
        self._stop = threading.Event()
        self._samples: list[Mapping[int, int]] = []
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(_SAMPLE_SECONDS):
            self._samples.append(procfs.usage(self._root).rss_bytes)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self) -> int:
        return max(procfs.peak_rss(self._samples).values(), default=0)


def _curl(arguments: list[str], headers: Mapping[str, str]) -> tuple[int, float, int]:
    """(status, seconds, bytes downloaded) of one curl call."""
    command = [CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total} %{size_download}"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    completed = subprocess.run(  # noqa: S603 (curl, with arguments the harness built)
        command + arguments, capture_output=True, text=True, timeout=300, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"curl exited {completed.returncode}: {completed.stderr.strip()}")
    status, seconds, downloaded = completed.stdout.split()
    return int(status), float(seconds), int(downloaded)


def _measure(
    server: Server,
    *,
    direction: str,
    size: int,
    arguments: list[str],
    headers: Mapping[str, str],
    arrived: Callable[[int], bool],
) -> Transfer:
    before = max(server.usage().rss_bytes.values())
    with _Sampler(server.process.pid) as sampler:
        status, seconds, downloaded = _curl(arguments, headers)
    return Transfer(
        direction=direction,
        size_bytes=size,
        seconds=seconds,
        status=status,
        complete=arrived(downloaded),
        rss_before=before,
        rss_peak=max(sampler.peak(), before),
    )


def download(server: Server, url: str, *, size: int, headers: Mapping[str, str]) -> Transfer:
    return _measure(
        server,
        direction="download",
        size=size,
        arguments=[url],
        headers=headers,
        arrived=lambda got: got == size,
    )


def upload(
    server: Server, url: str, *, source: Path, stored: Path, headers: Mapping[str, str]
) -> Transfer:
    """PUT `source` to `url`; complete when the upstream stored all of it at `stored`."""
    size = source.stat().st_size

    def arrived(_: int) -> bool:
        return stored.exists() and stored.stat().st_size == size

    return _measure(
        server,
        direction="upload",
        size=size,
        arguments=["-T", str(source), url],
        headers=headers,
        arrived=arrived,
    )
