"""The soak's mixed workload: every kind of client idgate meets, from a bounded set of loops.

Each scenario is one client action and returns its outcome as a short label (the HTTP status, or
what a raw-socket client saw); the runner tallies them. Nothing here waits on a timer except the
slow client, whose slowness is the point.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from bench.soak_upstream import SSE_EVENTS

PATH: Final = "/bench/soak"
WS_MESSAGES: Final = 3
#: A slow client sends one header byte this often, for at most SLOW_SECONDS.
SLOW_BYTE_SECONDS: Final = 0.2
SLOW_SECONDS: Final = 3.0


@dataclass(kw_only=True)
class Target:
    host: str
    port: int
    same_token: str
    denied_token: str
    session_cookie: str
    distinct_tokens: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


Scenario = Callable[[aiohttp.ClientSession, Target], Awaitable[str]]


async def _get(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    async with http.get(url, headers=headers, allow_redirects=False) as response:
        await response.read()
        return str(response.status)


async def same_bearer(http: aiohttp.ClientSession, target: Target) -> str:
    return await _get(http, f"{target.url}{PATH}", target.bearer(target.same_token))


async def distinct_bearer(http: aiohttp.ClientSession, target: Target) -> str:
    token = target.distinct_tokens.pop() if target.distinct_tokens else target.same_token
    return await _get(http, f"{target.url}{PATH}", target.bearer(token))


async def session_cookie(http: aiohttp.ClientSession, target: Target) -> str:
    return await _get(http, f"{target.url}{PATH}", {"Cookie": target.session_cookie})


async def forward_auth(http: aiohttp.ClientSession, target: Target) -> str:
    headers = {"X-Original-URI": PATH, **target.bearer(target.same_token)}
    return await _get(http, f"{target.url}/oauth2/auth", headers)


async def denied(http: aiohttp.ClientSession, target: Target) -> str:
    return await _get(http, f"{target.url}{PATH}", target.bearer(target.denied_token))


async def anonymous(http: aiohttp.ClientSession, target: Target) -> str:
    return await _get(http, f"{target.url}{PATH}", {"Accept": "application/json"})


async def websocket(http: aiohttp.ClientSession, target: Target) -> str:
    async with http.ws_connect(
        f"{target.url}/bench/ws", headers=target.bearer(target.same_token)
    ) as socket:
        for number in range(WS_MESSAGES):
            await socket.send_str(str(number))
            if (await socket.receive_str()) != str(number):
                return "ws-wrong-echo"
    return "101"


async def server_sent_events(http: aiohttp.ClientSession, target: Target) -> str:
    async with http.get(
        f"{target.url}/bench/sse", headers=target.bearer(target.same_token)
    ) as response:
        body = await response.read()
        if response.status == 200 and body.count(b"data: ") != SSE_EVENTS:
            return "sse-incomplete"
        return str(response.status)


async def malformed(_: aiohttp.ClientSession, target: Target) -> str:
    """A request line no server may accept: a control character in the path."""
    return await _raw(target, b"GET /bench/\x01soak HTTP/1.1\r\nHost: soak\r\n\r\n")


async def slow_client(_: aiohttp.ClientSession, target: Target) -> str:
    """A client that dribbles its header a byte at a time, then gives up."""
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(b"GET /bench/soak HTTP/1.1\r\nHost: soak\r\nX-Slow: ")
        deadline = time.monotonic() + SLOW_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(SLOW_BYTE_SECONDS)
            if reader.at_eof():
                return "slow-cut"
            writer.write(b"a")
            await writer.drain()
    except ConnectionError:
        return "slow-cut"
    finally:
        writer.close()
    return "slow-gave-up"


async def _raw(target: Target, request: bytes) -> str:
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.split()
        return parts[1].decode() if len(parts) > 1 else "closed"
    finally:
        writer.close()


#: Scenario -> weight: mostly the requests a real deployment serves, some of everything else.
MIX: Final[dict[Scenario, int]] = {
    same_bearer: 30,
    distinct_bearer: 10,
    session_cookie: 20,
    forward_auth: 15,
    websocket: 5,
    server_sent_events: 5,
    denied: 5,
    anonymous: 5,
    malformed: 3,
    slow_client: 2,
}

#: What each scenario may answer; anything else is a failure of the soak. An anonymous client
#: past `rate_limits.failed_auth_per_minute` is told 429, as designed.
EXPECTED: Final[dict[str, frozenset[str]]] = {
    "same_bearer": frozenset({"200"}),
    "distinct_bearer": frozenset({"200"}),
    "session_cookie": frozenset({"200"}),
    "forward_auth": frozenset({"202"}),
    "websocket": frozenset({"101"}),
    "server_sent_events": frozenset({"200"}),
    "denied": frozenset({"403"}),
    "anonymous": frozenset({"401", "429"}),
    "malformed": frozenset({"400"}),
    "slow_client": frozenset({"slow-cut", "slow-gave-up"}),
}


async def run_load(
    target: Target, *, seconds: float, concurrency: int, seed: int = 1
) -> Counter[tuple[str, str]]:
    """`concurrency` clients, each running random scenarios of MIX until `seconds` pass."""
    tally: Counter[tuple[str, str]] = Counter()
    scenarios, weights = list(MIX), list(MIX.values())
    deadline = time.monotonic() + seconds

    async def client(number: int) -> None:
        rng = random.Random(seed + number)  # noqa: S311 (a workload mix, not a secret)
        connector = aiohttp.TCPConnector(limit=4, force_close=False)
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as http:
            while time.monotonic() < deadline:
                scenario = rng.choices(scenarios, weights)[0]
                try:
                    outcome = await asyncio.wait_for(scenario(http, target), 30.0)
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    outcome = f"error:{type(error).__name__}"
                tally[(scenario.__name__, outcome)] += 1

    await asyncio.gather(*(client(number) for number in range(concurrency)))
    return tally


def unexpected(tally: Counter[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The outcomes no scenario should have had (any 5xx among them)."""
    return {
        (name, outcome): count
        for (name, outcome), count in tally.items()
        if outcome not in EXPECTED[name]
    }
