"""Per-client rate limits on what an attacker can repeat for free: sign-in starts, callbacks, and
failed authentications. Allowed traffic is never limited (see proxy/stages/limits.py).

Each limit is a token bucket per client address: `per_minute` requests at once, refilled evenly
over a minute. IPv6 clients are counted per /64, the smallest block one subscriber usually gets,
so rotating addresses inside it buys nothing. Memory is bounded: past `max_clients`, the client
seen longest ago is forgotten (its bucket starts full again, which only favours it).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from proxy.config.model import RateLimitSettings

#: 100,000 clients per limit: about 10 MB, and more distinct attackers than fit in one minute.
_MAX_CLIENTS: Final = 100_000
_IPV6_PREFIX: Final = 64


def client_key(address: str) -> str:
    """The address a limit counts: an IPv4 address itself, an IPv6 address's /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, _IPV6_PREFIX), strict=False))


class TokenBuckets:
    """One limit for every client: `per_minute` at once, then one every 60/`per_minute` s."""

    __slots__ = ("_buckets", "_clock", "_max_clients", "_per_second", "capacity")

    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = _MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """client -> (tokens left, when last updated)"""

    def take(self, client: str) -> float:
        """0.0 when `client` may go ahead (one token taken), else the seconds until it may."""
        key = client_key(client)
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self._per_second)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._per_second
        self._buckets[key] = (tokens - 1.0 if wait == 0.0 else tokens, now)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return wait


class RateLimits:
    """The configured limits; a limit set to 0 is off (None)."""

    __slots__ = ("callback", "failed_auth", "sign_in")

    def __init__(self, settings: RateLimitSettings) -> None:
        self.sign_in = _buckets(settings.sign_in_per_minute)
        self.callback = _buckets(settings.callback_per_minute)
        self.failed_auth = _buckets(settings.failed_auth_per_minute)


def _buckets(per_minute: int) -> TokenBuckets | None:
    return TokenBuckets(per_minute) if per_minute > 0 else None


def retry_after_header(wait: float) -> str:
    """RFC 9110 10.2.3: Retry-After = HTTP-date / delay-seconds (a whole number, at least 1)."""
    return str(max(1, math.ceil(wait)))
