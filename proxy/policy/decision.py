"""A policy decision: its outcome, the Reason (proxy/reasons.py) and the route it is for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from proxy.config.model import Route
from proxy.reasons import Reason


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    UNAUTHENTICATED = "unauthenticated"
    WOULD_DENY = "would_deny"
    """Audit mode: the policy denies, the request goes through, the denial is logged and counted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    outcome: Outcome
    reason: Reason
    route: Route
    rule: str | None = None
    """The block that decided, as a key path under the route: `allow` or `deny` whose condition
    matched, `step_up` when the sign-in falls short of it; for `not_allowed`, what was not met:
    `allow`, or the first unmet block of its `all` (`allow.all[1]`). For logs and explain."""
    matched: str | None = None
    """The condition that decided (`group:admins`, `domain:example.com`), for logs and explain."""

    @property
    def lets_through(self) -> bool:
        return self.outcome in (Outcome.ALLOW, Outcome.WOULD_DENY)
