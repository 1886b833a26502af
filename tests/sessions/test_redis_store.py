"""RedisStore and its clients without a server: configuration to redis-py, configuration errors
(the real-Redis tests are in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from proxy.config.model import (
    RedisNode,
    RedisSentinelSettings,
    RedisSettings,
    RedisTLSSettings,
    RedisTopology,
    Secret,
)
from proxy.sessions.redis_client import connect
from proxy.sessions.redis_store import RedisStore
from tests.sessions.records import record

TLS = RedisTLSSettings(
    ca_file=Path("/etc/idgate/redis-ca.pem"),
    cert_file=Path("/etc/idgate/client.pem"),
    key_file=Path("/etc/idgate/client.key"),
)
SENTINELS = RedisSentinelSettings(
    master="sessions",
    addresses=(RedisNode(host="10.0.0.1", port=26379), RedisNode(host="10.0.0.2", port=26379)),
    username="watcher",
    password=Secret("sentinel-pass"),
)


def test_an_invalid_url_is_refused_without_echoing_it() -> None:
    """A redis url of another scheme is a configuration error whose message holds no password."""
    with pytest.raises(ValueError, match="redis url") as caught:
        RedisStore(RedisSettings(url=Secret("ftp://:hunter2@redis.internal")), cookie_name="_x")
    assert "hunter2" not in str(caught.value)
    assert caught.value.__suppress_context__


async def test_a_saved_session_needs_a_positive_lifetime() -> None:
    """Saving with max_age 0 is a programming error, refused before Redis is asked."""
    store = RedisStore(RedisSettings(url=Secret("redis://127.0.0.1:1/0")), cookie_name="_idgate")
    with pytest.raises(ValueError, match="max_age"):
        await store.save(record(), {}, max_age=0)
    await store.close()


async def test_a_url_gets_acl_credentials_and_tls_files() -> None:
    """`rediss://` with `tls` files and `username`/`password` reaches redis-py's SSL connection."""
    connection = connect(
        RedisSettings(
            url=Secret("rediss://cache.internal:6380/2"),
            username="idgate",
            password=Secret("acl-pass"),
            tls=TLS,
        ),
        timeout_seconds=1.5,
    )
    client = connection.client
    assert isinstance(client, Redis)
    assert connection.topology is RedisTopology.SERVER
    pool = client.connection_pool
    assert pool.connection_class is SSLConnection
    options = pool.connection_kwargs
    assert (options["host"], options["port"], options["db"]) == ("cache.internal", 6380, 2)
    assert (options["username"], options["password"]) == ("idgate", "acl-pass")
    assert options["ssl_ca_certs"] == "/etc/idgate/redis-ca.pem"
    assert options["ssl_certfile"] == "/etc/idgate/client.pem"
    assert options["ssl_keyfile"] == "/etc/idgate/client.key"
    assert options["socket_timeout"] == 1.5
    await connection.close()


async def test_sentinel_asks_the_sentinels_with_their_own_credentials() -> None:
    """The primary is found through the sentinels (their own ACL user), and reached with the data
    nodes' credentials, both over TLS when `tls` is given."""
    connection = connect(
        RedisSettings(sentinel=SENTINELS, password=Secret("data-pass"), tls=TLS),
        timeout_seconds=1.0,
    )
    client = connection.client
    assert isinstance(client, Redis)
    assert connection.topology is RedisTopology.SENTINEL
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "sessions"
    assert pool.connection_class is SentinelManagedSSLConnection
    assert pool.connection_kwargs["password"] == "data-pass"
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/idgate/redis-ca.pem"
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["host"] for s in sentinels] == [
        "10.0.0.1",
        "10.0.0.2",
    ]
    for sentinel in sentinels:
        options = sentinel.connection_pool.connection_kwargs
        assert (options["username"], options["password"]) == ("watcher", "sentinel-pass")
        assert sentinel.connection_pool.connection_class is SSLConnection
    await connection.close()


async def test_cluster_starts_from_its_seed_nodes() -> None:
    """A cluster client knows the seed nodes and the ACL credentials; no connection is opened
    before the first command."""
    connection = connect(
        RedisSettings(
            cluster_nodes=(RedisNode(host="10.0.1.1", port=7000),),
            username="idgate",
            password=Secret("acl-pass"),
        ),
        timeout_seconds=1.0,
    )
    client = connection.client
    assert isinstance(client, RedisCluster)
    assert connection.topology is RedisTopology.CLUSTER
    assert [node.name for node in client.nodes_manager.startup_nodes.values()] == ["10.0.1.1:7000"]
    await connection.close()
