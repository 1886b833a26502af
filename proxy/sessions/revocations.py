"""What is revoked right now: the in-memory view every worker checks sessions and tokens against.

Four kinds of revocation. A back-channel logout names a provider session (`sid`) or a provider
subject (`sub`); an operator (`idgate revoke`) names a user (the configured user claim) or one
idgate session by its handle (`idgate sessions`). A subject or user revocation refuses what was
issued up to its time (sessions created, tokens issued), never later logins; `sid` and session
revocations refuse for good.

Entries live until their `expires_at` (the longest lifetime of anything they could refuse), or
until lifted. The view is bounded: past `max_entries` the entries closest to expiry are dropped.
Pure state, no I/O: proxy/sessions/revocation_list.py keeps it in step with the shared log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from proxy.sessions.model import SessionRecord

MAX_ENTRIES: Final = 100_000
#: The longest revocation value accepted (a user name, a session handle, a provider sid or sub).
MAX_VALUE_CHARS: Final = 1024


class RevocationKind(StrEnum):
    SID = "sid"
    """A provider session (back-channel logout with `sid`)."""
    SUBJECT = "sub"
    """A provider subject (back-channel logout without `sid`): records created up to then."""
    USER = "user"
    """An operator's `idgate revoke --user`: sessions created and tokens issued up to then."""
    SESSION = "session"
    """An operator's `idgate revoke --session`: one idgate session, by its handle."""


class RevocationFormatError(ValueError):
    """A log line or request that is not a revocation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Revocation:
    kind: RevocationKind
    value: str
    revoked_at: float
    expires_at: float
    lifted: bool = False
    """A lift event: removes the revocation of this kind and value written before it."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind.value,
                "value": self.value,
                "at": self.revoked_at,
                "until": self.expires_at,
                "lift": self.lifted,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Revocation:
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise RevocationFormatError("not a revocation")
            value = raw["value"]
            if not isinstance(value, str) or not 0 < len(value) <= MAX_VALUE_CHARS:
                raise RevocationFormatError("bad revocation value")
            return cls(
                kind=RevocationKind(raw["kind"]),
                value=value,
                revoked_at=float(raw["at"]),
                expires_at=float(raw["until"]),
                lifted=raw.get("lift") is True,
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, RevocationFormatError):
                raise
            raise RevocationFormatError("malformed revocation") from None


class Revocations:
    def __init__(
        self, *, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[tuple[RevocationKind, str], Revocation] = {}

    def apply(self, events: Iterable[Revocation]) -> None:
        """Events in the order they were written: a revocation replaces an older one of the same
        kind and value (the later time wins), a lift removes it."""
        for event in events:
            key = (event.kind, event.value)
            if event.lifted:
                self._entries.pop(key, None)
            elif event.expires_at > self._clock():
                self._entries[key] = event
        if len(self._entries) > self._max_entries:
            self.expire()
        if len(self._entries) > self._max_entries:
            keep = sorted(self._entries.values(), key=lambda entry: entry.expires_at)
            for entry in keep[: len(keep) - self._max_entries]:
                del self._entries[(entry.kind, entry.value)]

    def replace(self, entries: Iterable[Revocation]) -> None:
        """Forget everything and take `entries` (a full read of the shared list)."""
        self._entries.clear()
        self.apply(entries)

    def expire(self) -> None:
        now = self._clock()
        for key in [key for key, entry in self._entries.items() if entry.expires_at <= now]:
            del self._entries[key]

    def active(self) -> list[Revocation]:
        now = self._clock()
        return sorted(
            (entry for entry in self._entries.values() if entry.expires_at > now),
            key=lambda entry: entry.revoked_at,
        )

    def __len__(self) -> int:
        return len(self._entries)

    def _revoked_at(self, kind: RevocationKind, value: str | None) -> float | None:
        if value is None:
            return None
        entry = self._entries.get((kind, value))
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry.revoked_at

    def covers(self, record: SessionRecord) -> bool:
        """Whether this session record is refused."""
        if not self._entries:
            return False
        if self._revoked_at(RevocationKind.SID, record.provider_sid) is not None:
            return True
        return self.covers_session(
            handle=record.handle,
            subject=record.subject,
            user=record.user,
            created_at=record.created_at,
        )

    def covers_session(self, *, handle: str, subject: str, user: str, created_at: float) -> bool:
        """Whether a session so described is refused, the provider's `sid` aside (what
        `idgate sessions` knows of a session)."""
        if self._revoked_at(RevocationKind.SESSION, handle) is not None:
            return True
        # A login in the same clock tick as the revocation is refused: the order is unknown.
        for kind, value in ((RevocationKind.SUBJECT, subject), (RevocationKind.USER, user)):
            revoked_at = self._revoked_at(kind, value)
            if revoked_at is not None and created_at <= revoked_at:
                return True
        return False

    def covers_token(self, *, user: str, issued_at: float | None) -> bool:
        """Whether a bearer token of this user, issued at `issued_at` (`iat`), is
        refused. A token without `iat` of a revoked user is refused: its age is unknown. Only an
        operator's user revocation reaches tokens: a back-channel logout ends sessions."""
        if not self._entries:
            return False
        revoked_at = self._revoked_at(RevocationKind.USER, user)
        return revoked_at is not None and (issued_at is None or issued_at <= revoked_at)
