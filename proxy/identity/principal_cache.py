"""Identities already verified, by key, each kept no longer than its own `expires_at` (and, when
stored with `until`, no longer than that).

Bounded in size: when full, the least recently used entry goes first. An entry found expired is
dropped on the spot; expired ones never asked for again are pushed out by the bound. A hit costs
one dict lookup, one clock read and one move to the end: it runs on every cached request.

Entries share what they hold equal (issue 16: a worker's memory is mostly this cache and the
assertion cache): one object for each equal claim name, string and group or `amr` set, which
keeps an identity at about half of what its parsed claims cost. The values stay what they were
(lists stay lists); nested objects are kept as they came.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final, TypeVar

from proxy.identity.principal import NO_SIGN_IN, Principal

#: Distinct values a cache's sharing table holds; past it the table starts over. Sharing saves
#: memory and decides nothing: values no one else has (`jti`) only make it start over sooner.
_SHARED_VALUES: Final = 1_024

_Value = TypeVar("_Value", str, frozenset[str])


class PrincipalCache:
    def __init__(self, maxsize: int, clock: Callable[[], float]) -> None:
        """`clock` (Unix time) decides when an entry has expired."""
        self._maxsize = maxsize
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[Principal, float]] = OrderedDict()
        self._shared_values: dict[str | frozenset[str], Any] = {}

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

    def put(self, key: Hashable, principal: Principal, *, until: float | None = None) -> Principal:
        """Store `principal` until its `expires_at`, or `until` when that comes first; an
        identity already expired is not stored. Returns the identity as stored: equal to
        `principal`, sharing its values with the other entries; use it from then on, so that
        what else keeps it (the assertion cache) shares them too."""
        deadline = principal.expires_at if until is None else min(until, principal.expires_at)
        if deadline <= self._clock():
            return principal
        stored = self._shared(principal)
        self._entries[key] = (stored, deadline)
        self._entries.move_to_end(key)
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
        return stored

    def _shared(self, principal: Principal) -> Principal:
        share = self._share
        sign_in = principal.sign_in
        return replace(
            principal,
            user=share(principal.user),
            groups=share(principal.groups),
            claims=MappingProxyType(
                {share(name): self._shared_claim(value) for name, value in principal.claims.items()}
            ),
            sign_in=NO_SIGN_IN
            if sign_in == NO_SIGN_IN
            else replace(sign_in, amr=share(sign_in.amr)),
        )

    def _shared_claim(self, value: Any) -> Any:
        """A claim's value with its strings (its own, or a list's) shared; anything else as is."""
        if type(value) is str:
            return self._share(value)
        if type(value) is list:
            return [self._share(item) if type(item) is str else item for item in value]
        return value

    def _share(self, value: _Value) -> _Value:
        """The object equal to `value` that entries share (only strings and sets of them: never
        a number, as 1, 1.0 and True are equal)."""
        if len(self._shared_values) >= _SHARED_VALUES and value not in self._shared_values:
            self._shared_values.clear()
        shared: _Value = self._shared_values.setdefault(value, value)
        return shared
