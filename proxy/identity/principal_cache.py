"""Identities already verified, by key, each kept no longer than its own `expires_at` (and, when
stored with `until`, no longer than that).

Bounded in size: when full, the least recently used entry goes first. An entry found expired is
dropped on the spot; expired ones never asked for again are pushed out by the bound. A hit costs
one dict lookup, one clock read and one move to the end: it runs on every cached request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from proxy.identity.principal import Principal


class PrincipalCache:
    def __init__(self, maxsize: int, clock: Callable[[], float]) -> None:
        """`clock` (Unix time) decides when an entry has expired."""
        self._maxsize = maxsize
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[Principal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Principal | None:
        """The identity stored under `key`, unless it has expired (or was never stored)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        principal, until = entry
        if until <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return principal

    def put(self, key: Hashable, principal: Principal, *, until: float | None = None) -> None:
        """Store `principal` until its `expires_at`, or `until` when that comes first; an
        identity already expired is not stored."""
        deadline = principal.expires_at if until is None else min(until, principal.expires_at)
        if deadline <= self._clock():
            return
        self._entries[key] = (principal, deadline)
        self._entries.move_to_end(key)
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
