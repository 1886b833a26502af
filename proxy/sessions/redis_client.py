"""The redis-py client for each `session.redis` topology: one server, Sentinel, or Cluster.

Only redis-py's own clients: `Redis.from_url`, `Sentinel(...).master_for(...)` (which asks the
sentinels for the primary on every new connection and drops connections to a demoted one), and
`RedisCluster` (which follows MOVED/ASK redirections and re-reads the slot map). Reconnecting after
a failover is theirs; idgate only bounds how long one attempt may take.

Modules on a worker's path import this one (and `redis_store`, `revocation_redis`,
`session_index`) only when the config names a Redis: redis-py imports OpenTelemetry's SDK on
import, about 9 MB of every process that loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException, RedisError

from proxy.config.model import RedisSettings, RedisTLSSettings, RedisTopology, Secret
from proxy.sessions.store import StoreUnavailable

#: A blip is retried briefly; a Redis that stays down fails the request within about a second
#: rather than holding it through redis-py's default ten retries.
RETRIES: Final = 2


@dataclass(slots=True)
class RedisConnection:
    """The client the store talks to, and what else must be closed with it (the sentinels)."""

    client: Redis | RedisCluster
    topology: RedisTopology
    _others: list[Redis] = field(default_factory=list)

    async def close(self) -> None:
        await self.client.aclose()
        for other in self._others:
            await other.aclose()


def connect(settings: RedisSettings, *, timeout_seconds: float) -> RedisConnection:
    """A client for `settings`; no connection is opened until the first command.

    Raises ValueError, naming no URL or password, when redis-py refuses the settings.
    """
    common: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), RETRIES),
    }
    credentials = _credentials(settings.username, settings.password)
    topology = settings.topology
    if topology is RedisTopology.SENTINEL:
        assert settings.sentinel is not None
        own = settings.sentinel
        tls = _tls(settings.tls, enabled=settings.tls is not None)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [(node.host, node.port) for node in own.addresses],
            sentinel_kwargs={
                **common,
                **_credentials(own.username, own.password),
                **tls,
            },
            **common,
            **credentials,
            **tls,
        )
        client = sentinel.master_for(own.master)
        return RedisConnection(client, topology, list(sentinel.sentinels))
    if topology is RedisTopology.CLUSTER:
        return RedisConnection(
            RedisCluster(
                startup_nodes=[
                    ClusterNode(node.host, node.port) for node in settings.cluster_nodes
                ],
                **common,
                **credentials,
                **_tls(settings.tls, enabled=settings.tls is not None),
            ),
            topology,
        )
    assert settings.url is not None
    try:
        server = Redis.from_url(
            settings.url.reveal(), **common, **credentials, **_tls(settings.tls, enabled=False)
        )
    except ValueError:
        raise ValueError("session redis url is not a valid Redis URL") from None
    return RedisConnection(server, topology)


def _credentials(username: str | None, password: Secret | None) -> dict[str, Any]:
    """ACL credentials as redis-py keywords; a URL's own user and password take precedence."""
    found: dict[str, Any] = {}
    if username is not None:
        found["username"] = username
    if password is not None:
        found["password"] = password.reveal()
    return found


def _tls(tls: RedisTLSSettings | None, *, enabled: bool) -> dict[str, Any]:
    """redis-py's ssl keywords; `enabled` adds `ssl=True` (a rediss:// URL says so itself)."""
    options: dict[str, Any] = {"ssl": True} if enabled else {}
    if tls is not None:
        if tls.ca_file is not None:
            options["ssl_ca_certs"] = str(tls.ca_file)
        if tls.cert_file is not None:
            options["ssl_certfile"] = str(tls.cert_file)
        if tls.key_file is not None:
            options["ssl_keyfile"] = str(tls.key_file)
    return options


@contextmanager
def reaching_redis() -> Iterator[None]:
    try:
        yield
    # RedisClusterException (no cluster node reachable) is not a RedisError.
    except (RedisError, RedisClusterException, OSError) as error:
        raise StoreUnavailable(f"session store unavailable ({type(error).__name__})") from None
