"""A configuration problem named by its key path, and the one error that carries all of them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigIssue:
    path: str
    """Where the problem is, as `routes[2].allow.groups`; empty for the document as a whole."""
    message: str
    """What is wrong; never contains a secret's value."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """The configuration cannot be used; `issues` lists every problem found, not just the first."""

    def __init__(self, issues: tuple[ConfigIssue, ...]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


def key_path(parent: str, key: str) -> str:
    """`parent.key`, or `parent["a.b"]` for a key that is not a plain name."""
    if not _PLAIN_KEY.match(key):
        return f"{parent}[{json.dumps(key)}]"
    return f"{parent}.{key}" if parent else key


def item_path(parent: str, index: int) -> str:
    return f"{parent}[{index}]"
