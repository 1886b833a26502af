"""Collapsed stacks (py-spy `--format raw`) summed into where the CPU time goes.

Each line is `frame;frame;...;frame COUNT`, outermost first, a frame being
`function (path/to/file.py:LINE)`. Self time is the innermost frame's; inclusive time counts each
function once per stack it appears in. Areas group self time by the library a file belongs to.

Compiled code has no Python frame of its own (py-spy runs without `--native`): the time of
httptools' parser, uvloop or cryptography's Rust core is self time of the Python function that
called it. So httptools has no area: its parsing shows as proxy/upstream/'s, i.e. idgate's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_REPO: Final = f"{Path(__file__).resolve().parent.parent}/"
_FRAME: Final = re.compile(r"^(?P<function>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")
#: (substring of a file path, area name), first match wins.
_AREAS: Final = (
    ("/proxy/", "idgate (proxy/)"),
    ("/joserfc/", "joserfc"),
    ("/cryptography/", "cryptography"),
    ("/aiohttp/client", "aiohttp client"),
    ("/aiohttp/connector", "aiohttp client"),
    ("/aiohttp/web", "aiohttp server"),
    ("/aiohttp/", "aiohttp (shared)"),
    ("/yarl/", "yarl"),
    ("/multidict/", "multidict"),
    ("/prometheus_client/", "prometheus-client"),
    ("/cachetools/", "cachetools"),
    ("/asyncio/", "asyncio"),
    ("/logging/", "logging"),
    ("/json/", "json"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    function: str
    file: str

    @property
    def label(self) -> str:
        return f"{self.function} ({self.file})"

    @property
    def area(self) -> str:
        path = "/" + self.file
        for fragment, area in _AREAS:
            if fragment in path:
                return area
        return "other"


def parse_frame(text: str) -> Frame | None:
    """A Python frame; None for py-spy's process and thread pseudo-frames."""
    found = _FRAME.match(text)
    if found is None or not found["file"].endswith(".py"):
        return None
    return Frame(function=found["function"], file=_short(found["file"]))


def _short(path: str) -> str:
    """`.../site-packages/aiohttp/web_protocol.py` -> `aiohttp/web_protocol.py`."""
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker.startswith("/lib") else tail
    return path.removeprefix(_REPO)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    total: int
    own: Counter[str]
    """Samples with this function innermost."""
    inclusive: Counter[str]
    """Samples with this function anywhere on the stack."""
    areas: Counter[str]
    """Self samples by library."""


def summarize(lines: Iterable[str]) -> Profile:
    total, own, inclusive, areas = 0, Counter[str](), Counter[str](), Counter[str]()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame for frame in map(parse_frame, stack.split(";")) if frame is not None]
        if not frames:
            continue
        samples = int(count)
        total += samples
        own[frames[-1].label] += samples
        areas[frames[-1].area] += samples
        for label in {frame.label for frame in frames}:
            inclusive[label] += samples
    return Profile(total=total, own=own, inclusive=inclusive, areas=areas)


def brief(profile: Profile, *, top: int = 10) -> str:
    """Markdown: self time by library on one line, then the top functions by self time."""

    def share(samples: int) -> str:
        return f"{samples / max(profile.total, 1):.1%}"

    libraries = ", ".join(f"{area} {share(n)}" for area, n in profile.areas.most_common())
    lines = [f"Self time by library: {libraries}.", ""]
    lines += [f"- {share(n)} `{label}`" for label, n in profile.own.most_common(top)]
    return "\n".join(lines) + "\n"


def render(profile: Profile, *, top: int = 25) -> str:
    def share(samples: int) -> str:
        return f"{samples / max(profile.total, 1):6.1%}"

    lines = [f"{profile.total} samples", "", "self time by library:"]
    lines += [f"  {share(n)}  {area}" for area, n in profile.areas.most_common()]
    lines += ["", f"top {top} functions, self time:"]
    lines += [f"  {share(n)}  {label}" for label, n in profile.own.most_common(top)]
    own = [(label, n) for label, n in profile.inclusive.most_common() if "(proxy/" in label]
    lines += ["", f"top {top} idgate functions, inclusive time (the stages and what they call):"]
    lines += [f"  {share(n)}  {label}" for label, n in own[:top]]
    return "\n".join(lines) + "\n"
