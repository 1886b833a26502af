"""One line of `idgate check --online`: what was checked, and how it went."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "FAIL"
    """Sign-in or token checks will not work as configured; the check exits 1."""
    UNCHECKED = "skip"
    """The provider's answer cannot tell (or the step does not apply); not a failure."""


@dataclass(frozen=True, slots=True)
class Finding:
    subject: str
    outcome: Outcome
    detail: str

    def __str__(self) -> str:
        return f"{self.outcome.value:<4}  {self.subject}: {self.detail}"
