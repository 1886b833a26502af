"""New tokens for the distinct-token workload, handed out so idgate never sees one twice.

The pool is one file, one token a line; wrk thread `t` of `n` takes lines `t, t+n, t+2n, ...`
(bench/wrk.lua) from a per-thread start position. idgate's runs consume the pool one after the
other, each starting where the previous ended, and the pool is topped up between runs (minting
never overlaps a measurement). A run that outpaces its pool wraps round, and the reuse is counted.
Apache keeps no cache of validated tokens, so its runs simply start at the beginning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench.tokens import Issuer
from bench.wrk import WrkResult


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenSlice:
    path: Path
    start: int
    """Position in each thread's share where sending begins."""
    capacity: int
    """Tokens in each thread's share."""
    tracked: bool
    """Reuse matters: the server caches validated tokens, so a repeat is a cheaper request."""

    def reused(self, result: WrkResult, threads: int) -> int:
        """Requests of `result` that carried a token sent before: an upper bound, taking every
        thread as far as the furthest (a share wraps round once it is used up)."""
        if not self.tracked:
            return 0
        past_end = max(0, self.start + result.tokens_max_thread - self.capacity)
        return min(result.tokens_sent, past_end * threads)


class TokenPool:
    def __init__(self, issuer: Issuer, path: Path, *, threads: int, processes: int) -> None:
        self._issuer = issuer
        self._path = path
        self._threads = threads
        self._processes = processes
        self._count = 0
        self._next = 0
        """Per-thread position where idgate's next run starts."""

    @property
    def minted(self) -> int:
        return self._count

    def top_up(self, requests: int) -> int:
        """Mint until at least `requests` unsent tokens remain; how many were minted."""
        unsent = (self._count // self._threads - self._next) * self._threads
        if unsent >= requests:
            return 0
        # Whole rows of `threads` lines, so every line already written keeps its thread.
        count = math.ceil((requests - unsent) / self._threads) * self._threads
        tokens = self._issuer.mint_many(
            count, prefix=f"distinct-{self._count}", processes=self._processes
        )
        with self._path.open("a") as pool:
            pool.writelines(f"{token}\n" for token in tokens)
        self._count += count
        return count

    def fresh(self) -> TokenSlice:
        """Where idgate's next run starts: past every token idgate has been sent."""
        capacity = self._count // self._threads
        return TokenSlice(path=self._path, start=self._next, capacity=capacity, tracked=True)

    def from_start(self) -> TokenSlice:
        """The whole pool from its first token, for a server that caches nothing: going round
        the pool costs it the same, so reuse is not counted."""
        capacity = self._count // self._threads
        return TokenSlice(path=self._path, start=0, capacity=capacity, tracked=False)

    def consumed(self, used: TokenSlice, result: WrkResult) -> None:
        """Record that a run from `used` sent what `result` says: the next run starts after it."""
        self._next = max(self._next, used.start + result.tokens_max_thread)
