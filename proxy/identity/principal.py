"""Who is asking: the one identity type every identifier produces and every policy reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class CredentialSource(StrEnum):
    """Where the identity came from; a decision-log field and metric label."""

    BEARER = "bearer"
    CLIENT_CERT = "client_cert"
    SESSION = "session"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    user: str
    """Value of the configured user claim (default `sub`)."""
    email: str | None
    groups: frozenset[str]
    claims: Mapping[str, Any]
    """Verified claims, read-only; policies reach nested values by dotted path."""
    source: CredentialSource
    expires_at: float
    """Unix time after which this identity must not be used (token `exp`, session end)."""
    spiffe_id: str | None = None
