"""What is run: the servers, the workloads (which request, how many connections, against whom),
and how long and how often."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

#: How long nginx may reuse idgate's allow in the cached nginx+idgate target
#: (`forward_auth.decision_cache_seconds` of the benchmark's idgate).
DECISION_CACHE_SECONDS: Final = 5
#: Users of the realistic distinct-token workload, each with a token of their own.
USER_COUNT: Final = 10_000


class Target(StrEnum):
    DIRECT = "direct"
    """wrk straight to the upstream nginx: no proxy hop at all."""
    NGINX = "nginx"
    """nginx as a plain reverse proxy, no authentication: the floor of one proxy hop."""
    APACHE = "apache"
    """Apache httpd + mod_auth_openidc, checking what idgate checks."""
    IDGATE = "idgate"
    """idgate, 10 routes, the benchmark route last."""
    IDGATE_1K = "idgate-1k"
    """idgate, 1,000 routes, the benchmark route last."""
    NGINX_IDGATE = "nginx+idgate"
    """nginx configured by `idgate render nginx`, asking idgate (10 routes) on every request."""
    NGINX_IDGATE_CACHED = f"nginx+idgate, decision cache {DECISION_CACHE_SECONDS} s"
    """The same, reusing each allow for as long as idgate says (at most the ceiling)."""


class Credential(StrEnum):
    """What each request carries (the values name workloads, they are not secrets)."""

    SAME_TOKEN = "same bearer token"  # noqa: S105
    DISTINCT_TOKENS = "distinct bearer tokens"
    USERS = f"{USER_COUNT:,} users' bearer tokens"
    SESSION = "session cookie"
    FORWARD_AUTH = "/oauth2/auth"


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    credential: Credential
    connections: int
    targets: tuple[Target, ...]

    @property
    def name(self) -> str:
        return f"{self.credential} -c{self.connections}"


#: idgate as nginx's decision service (`idgate render nginx`): nginx proxies, idgate decides.
GATEWAYS: Final = (Target.NGINX_IDGATE, Target.NGINX_IDGATE_CACHED)

WORKLOADS: Final = (
    Workload(
        credential=Credential.SAME_TOKEN,
        connections=32,
        targets=(
            Target.DIRECT,
            Target.NGINX,
            Target.APACHE,
            Target.IDGATE,
            Target.IDGATE_1K,
            *GATEWAYS,
        ),
    ),
    Workload(
        credential=Credential.SAME_TOKEN,
        connections=256,
        targets=(Target.DIRECT, Target.NGINX, Target.APACHE, Target.IDGATE, *GATEWAYS),
    ),
    Workload(
        credential=Credential.USERS,
        connections=32,
        targets=(Target.APACHE, Target.IDGATE, *GATEWAYS),
    ),
    Workload(
        credential=Credential.DISTINCT_TOKENS,
        connections=32,
        targets=(Target.APACHE, Target.IDGATE),
    ),
    Workload(credential=Credential.SESSION, connections=32, targets=(Target.IDGATE, *GATEWAYS)),
    Workload(credential=Credential.FORWARD_AUTH, connections=32, targets=(Target.IDGATE,)),
)
BASELINE: Final = WORKLOADS[0]
"""Same token at -c32: the workload the main targets are judged on."""
HIGH_CONCURRENCY: Final = WORKLOADS[1]
USERS: Final = WORKLOADS[2]
"""Every request carries one of USER_COUNT tokens in turn: idgate's caches answer after a pass."""
DISTINCT: Final = WORKLOADS[3]
"""Every request carries a token idgate has never been sent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    rounds: int
    seconds: float
    """Length of one wrk run."""
    warmup_seconds: float
    threads: int
    """wrk threads."""
    transfer_bytes: int


FULL: Final = Options(
    rounds=3,
    seconds=10.0,
    warmup_seconds=2.0,
    threads=2,
    transfer_bytes=100 * 1024 * 1024,
)
QUICK: Final = Options(
    rounds=1,
    seconds=3.0,
    warmup_seconds=1.0,
    threads=2,
    transfer_bytes=100 * 1024 * 1024,
)
