"""Back-channel logouts remembered in memory, for sessions that live only in a browser cookie.

A store that keeps nothing server side cannot delete a browser's cookie, so it remembers which
provider sessions and subjects were logged out and refuses records they cover. Entries live as
long as the longest session can, then drop out: every record they could refuse has expired by
then. The memory is per process and bounded; past `max_entries` the oldest revocations are
forgotten first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from cachetools import TTLCache

from proxy.sessions.model import SessionRecord

_MAX_ENTRIES: Final = 100_000


class Revocations:
    def __init__(
        self,
        *,
        max_lifetime_seconds: float,
        max_entries: int = _MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_lifetime_seconds <= 0:
            raise ValueError("the maximum session lifetime must be positive")
        self._clock = clock
        self._sids: TTLCache[str, float] = TTLCache(
            maxsize=max_entries, ttl=max_lifetime_seconds, timer=clock
        )
        self._subjects: TTLCache[str, float] = TTLCache(
            maxsize=max_entries, ttl=max_lifetime_seconds, timer=clock
        )

    def revoke_sid(self, sid: str) -> None:
        """Every record of this provider session is refused from now on."""
        self._sids[sid] = self._clock()

    def revoke_subject(self, subject: str) -> None:
        """Records of this subject created up to now are refused; later logins are not."""
        self._subjects[subject] = self._clock()

    def covers(self, record: SessionRecord) -> bool:
        if record.provider_sid is not None and record.provider_sid in self._sids:
            return True
        revoked_at = self._subjects.get(record.subject)
        # A login in the same clock tick as the logout is refused: the order is unknown.
        return revoked_at is not None and record.created_at <= revoked_at
