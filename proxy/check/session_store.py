"""Whether the Redis session store answers, with the settings idgate will use."""

from __future__ import annotations

from redis.exceptions import RedisClusterException, RedisError

from proxy.check.findings import Finding, Outcome
from proxy.config.model import RedisSettings
from proxy.sessions.redis_client import connect

SUBJECT = "redis"


async def check_redis(redis: RedisSettings, *, timeout_seconds: float) -> Finding:
    """PING through the configured topology (server, Sentinel or Cluster), TLS and credentials."""
    try:
        connection = connect(redis, timeout_seconds=timeout_seconds)
    except ValueError as error:
        return Finding(SUBJECT, Outcome.FAILED, f"redis-py refused the settings: {error}")
    try:
        await connection.client.ping()
    # RedisClusterException (no cluster node reachable) is not a RedisError; names only, since a
    # redis-py message may quote the URL with its password.
    except (RedisError, RedisClusterException, OSError) as error:
        return Finding(
            SUBJECT, Outcome.FAILED, f"{redis.topology.value}: no answer ({type(error).__name__})"
        )
    finally:
        await connection.close()
    return Finding(SUBJECT, Outcome.OK, f"{redis.topology.value}: PING answered")
