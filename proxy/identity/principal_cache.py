"""Identities already verified, by key, each kept no longer than its own `expires_at`.

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
        self._entries: OrderedDict[Hashable, Principal] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Principal | None:
        """The identity stored under `key`, unless it has expired (or was never stored)."""
        principal = self._entries.get(key)
        if principal is None:
            return None
        if principal.expires_at <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return principal

    def put(self, key: Hashable, principal: Principal) -> None:
        """Store `principal` until its `expires_at`; an identity already expired is not stored."""
        if principal.expires_at <= self._clock():
            return
        self._entries[key] = principal
        self._entries.move_to_end(key)
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
