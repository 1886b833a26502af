"""Decisions and their reasons: the same enum values are log fields and metric labels."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from proxy.config.model import Route


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    UNAUTHENTICATED = "unauthenticated"
    WOULD_DENY = "would_deny"
    """Audit mode: the policy denies, the request goes through, the denial is logged and counted."""


class Reason(StrEnum):
    # allow
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    GROUP = "group"
    EMAIL = "email"
    DOMAIN = "domain"
    USER = "user"
    CLAIM = "claim"
    SPIFFE_ID = "spiffe_id"
    # deny
    DENY_RULE = "deny_rule"
    NOT_ALLOWED = "not_allowed"
    ORIGIN = "origin"
    # unauthenticated
    NO_CREDENTIALS = "no_credentials"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (a reason label, not a credential)
    INVALID_SESSION = "invalid_session"
    INVALID_CERTIFICATE = "invalid_certificate"
    SIGN_IN_FAILED = "sign_in_failed"
    # request-level failures decided before policy
    NO_ROUTE = "no_route"
    BAD_REQUEST = "bad_request"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    outcome: Outcome
    reason: Reason
    route: Route
    matched: str | None = None
    """The condition that decided (`group:admins`, `domain:example.com`), for logs and explain."""

    @property
    def lets_through(self) -> bool:
        return self.outcome in (Outcome.ALLOW, Outcome.WOULD_DENY)
