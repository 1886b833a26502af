"""A bounded background load for fault tests: a few clients sending one request in a loop.

Every answer is kept with the monotonic times it was sent and received, so a test can judge the
answers of one phase (before, during and after a fault) and wait, with a deadline, until they
show what it expects. The load stops by itself after `max_requests` per client or `max_seconds`,
whichever comes first, and leaving the `async with` block stops it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import aiohttp

#: No answer within this long is a hang: recorded as status 0, which no test accepts.
REQUEST_TIMEOUT: Final = 5.0
WAIT_TIMEOUT: Final = 10.0
NO_ANSWER: Final = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    sent: float
    received: float
    status: int
    """The HTTP status, or NO_ANSWER when the connection failed or timed out."""
    reason: str | None
    """idgate's `reason` for an error it answered itself (JSON body); None otherwise."""


def statuses(answers: Sequence[Answer]) -> Counter[int]:
    return Counter(answer.status for answer in answers)


class Load:
    """`clients` concurrent clients, each with its own connection, GETting `url` with `headers`."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        clients: int = 3,
        max_requests: int = 2000,
        max_seconds: float = 15.0,
    ) -> None:
        self._url = url
        self._headers = dict(headers)
        self._clients = clients
        self._max_requests = max_requests
        self._max_seconds = max_seconds
        self.answers: list[Answer] = []
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        deadline = time.monotonic() + self._max_seconds
        self._tasks = [
            asyncio.create_task(self._client(deadline), name=f"load client {index}")
            for index in range(self._clients)
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Let each client finish the request it has in flight (so every request the upstream
        saw has its answer here), cancelling them only if the block failed or they hang."""
        self._stopping.set()
        if exc is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REQUEST_TIMEOUT + 1):
                    await asyncio.wait(self._tasks)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def now() -> float:
        """A mark on the answers' clock, for `sent_after` and `within`."""
        return time.monotonic()

    def sent_after(self, mark: float) -> list[Answer]:
        return [answer for answer in self.answers if answer.sent >= mark]

    def within(self, start: float, end: float) -> list[Answer]:
        """The answers to requests sent at or after `start` and answered by `end`."""
        return [a for a in self.answers if a.sent >= start and a.received <= end]

    async def wait_for(self, what: str, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds (checked at every answer); fail after WAIT_TIMEOUT,
        or as soon as every client has stopped without it holding."""

        def settled() -> bool:
            return predicate() or self._stopping.is_set() or all(t.done() for t in self._tasks)

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WAIT_TIMEOUT), self._changed:
                await self._changed.wait_for(settled)
        if not predicate():
            counts = dict(statuses(self.answers))
            raise AssertionError(f"no {what} within {WAIT_TIMEOUT}s: {counts}")

    async def _client(self, deadline: float) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for _ in range(self._max_requests):
                if self._stopping.is_set() or time.monotonic() >= deadline:
                    break
                answer = await self._send(http)
                async with self._changed:
                    self.answers.append(answer)
                    self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def _send(self, http: aiohttp.ClientSession) -> Answer:
        sent = time.monotonic()
        try:
            async with http.get(self._url, headers=self._headers, allow_redirects=False) as resp:
                body = await resp.json() if resp.content_type == "application/json" else None
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            return Answer(sent=sent, received=time.monotonic(), status=NO_ANSWER, reason=None)
        reason = body.get("reason") if isinstance(body, dict) and status >= 400 else None
        return Answer(sent=sent, received=time.monotonic(), status=status, reason=reason)
