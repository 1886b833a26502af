"""Just enough of Dockerfile and .dockerignore syntax to check what the image is built from.

Instructions: continuation lines joined, comment lines dropped (as BuildKit does), split into
stages at FROM. Ignore patterns: Docker's rules, where a pattern that matches a directory
matches everything below it, `**` crosses directories, and the last matching line wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    keyword: str
    """Upper case: FROM, RUN, COPY, ..."""
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dockerfile:
    global_args: tuple[Instruction, ...]
    """ARGs before the first FROM."""
    stages: tuple[tuple[Instruction, ...], ...]
    """Each stage's instructions, its FROM first."""

    @property
    def final_stage(self) -> tuple[Instruction, ...]:
        return self.stages[-1]


def parse_dockerfile(text: str) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    instructions = [
        Instruction(keyword=keyword.upper(), arguments=" ".join(rest.split()))
        for keyword, _, rest in (line.strip().partition(" ") for line in logical if line.strip())
    ]
    starts = [index for index, item in enumerate(instructions) if item.keyword == "FROM"]
    stages = tuple(
        tuple(instructions[start:end])
        for start, end in zip(starts, [*starts[1:], None], strict=True)
    )
    return Dockerfile(global_args=tuple(instructions[: starts[0]]), stages=stages)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            parts.append(pattern[index : end + 1])
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def build_context_excludes(dockerignore: str, path: str) -> bool:
    """Whether `.dockerignore` keeps `path` (relative, with /) out of the build context."""
    candidates = [path, *(str(parent) for parent in PurePosixPath(path).parents)][:-1]
    excluded = False
    for line in dockerignore.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        include = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip().strip("/"))
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not include
    return excluded
