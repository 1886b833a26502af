"""`session.redis`: the three topologies, ACL and TLS, the older `redis_url`, and every mistake
reported at its key path without quoting a password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config.load import parse_settings
from proxy.config.model import (
    RedisNode,
    RedisSentinelSettings,
    RedisSettings,
    RedisTLSSettings,
    RedisTopology,
    Secret,
    SessionStoreKind,
)
from tests.config.conftest import Issues

ENVIRON = {"REDIS_PASSWORD": "hunter2-data", "SENTINEL_PASSWORD": "hunter2-sentinel"}


def parsed(document: dict[str, Any], redis: object) -> RedisSettings:
    document["session"].update(store="redis", redis=redis)
    found = parse_settings(document, ENVIRON).session.redis
    assert found is not None
    return found


def test_redis_url_keeps_meaning_one_server(document: dict[str, Any]) -> None:
    """The older `session.redis_url` is read exactly as `session.redis: {url: ...}`."""
    document["session"].update(store="redis", redis_url="redis://cache:6379/0")
    old = parse_settings(document, {}).session.redis
    del document["session"]["redis_url"]
    assert old == parsed(document, {"url": "redis://cache:6379/0"})
    assert old is not None
    assert old.topology is RedisTopology.SERVER


def test_redis_with_the_cookie_store_is_kept_for_the_revocation_list(
    document: dict[str, Any],
) -> None:
    """`session.redis` beside `store: cookie` is accepted: replicas share revocations there."""
    document["session"].update(redis={"url": "redis://cache:6379/0"})
    session = parse_settings(document, {}).session
    assert session.store is SessionStoreKind.COOKIE
    assert session.redis is not None


def test_sentinel_with_both_sets_of_credentials_and_tls(
    document: dict[str, Any], tmp_path: Path
) -> None:
    """A sentinel block names the master and the sentinels; passwords come from the environment."""
    ca = tmp_path / "ca.pem"
    ca.write_text("ca", encoding="utf-8")
    settings = parsed(
        document,
        {
            "sentinel": {
                "master": "sessions",
                "addresses": ["10.0.0.1:26379", "[2001:db8::2]:26379"],
                "password": "${SENTINEL_PASSWORD}",
            },
            "username": "idgate",
            "password": "${REDIS_PASSWORD}",
            "tls": {"ca_file": str(ca)},
        },
    )
    assert settings == RedisSettings(
        sentinel=RedisSentinelSettings(
            master="sessions",
            addresses=(
                RedisNode(host="10.0.0.1", port=26379),
                RedisNode(host="2001:db8::2", port=26379),
            ),
            password=Secret("hunter2-sentinel"),
        ),
        username="idgate",
        password=Secret("hunter2-data"),
        tls=RedisTLSSettings(ca_file=ca),
    )
    assert settings.topology is RedisTopology.SENTINEL


def test_cluster_from_seed_nodes_and_an_empty_tls_block(document: dict[str, Any]) -> None:
    """`cluster.nodes` lists seeds; `tls:` written empty turns TLS on with the system's CAs."""
    settings = parsed(document, {"cluster": {"nodes": ["redis-0:6379", "redis-1:6379"]}, "tls": {}})
    assert settings.cluster_nodes == (
        RedisNode(host="redis-0", port=6379),
        RedisNode(host="redis-1", port=6379),
    )
    assert settings.tls == RedisTLSSettings()
    assert settings.topology is RedisTopology.CLUSTER


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ({"store": "redis", "redis": {}}, "session.redis: needs one of url, sentinel or cluster"),
        (
            {"store": "redis", "redis": {"url": "redis://a", "cluster": {"nodes": ["b:1"]}}},
            "session.redis: exactly one of url, sentinel or cluster, not url and cluster",
        ),
        (
            {"store": "redis", "redis_url": "redis://a", "redis": {"url": "redis://a"}},
            "session.redis_url: write the URL as redis.url, not both redis_url and redis",
        ),
        (
            {"store": "redis", "redis": {"sentinel": {"addresses": ["a:26379"]}}},
            "session.redis.sentinel.master: required",
        ),
        (
            {"store": "redis", "redis": {"sentinel": {"master": "m", "addresses": ["a"]}}},
            'session.redis.sentinel.addresses[0]: expected "host:port"',
        ),
        (
            {"store": "redis", "redis": {"cluster": {"nodes": []}}},
            "session.redis.cluster.nodes: must not be empty",
        ),
        (
            {"store": "redis", "redis": {"cluster": {"nodes": ["a:0"]}}},
            "session.redis.cluster.nodes[0]: port 0 is not",
        ),
        (
            {"store": "redis", "redis": {"url": "redis://a", "tls": {}}},
            "session.redis.tls: TLS to a single server is a rediss:// url",
        ),
        (
            {"store": "redis", "redis": {"url": "rediss://a", "tls": {"ca_file": "/nonexistent"}}},
            "session.redis.tls.ca_file: no such file",
        ),
        (
            {"store": "redis", "redis": {"url": "rediss://a", "tls": {"key_file": "/etc/hosts"}}},
            "session.redis.tls.key_file: needs cert_file too",
        ),
        (
            {"store": "redis", "redis": {"url": "rediss://a", "sentinels": ["a:1"]}},
            "session.redis.sentinels: unknown key; did you mean sentinel?",
        ),
    ],
)
def test_redis_mistakes_are_reported_at_their_key(
    document: dict[str, Any], issues: Issues, session: dict[str, Any], expected: str
) -> None:
    """Each mistake in the Redis settings is one issue naming its key path."""
    document["session"].update(session)
    reported = issues(document)
    assert len(reported) == 1, reported
    assert reported[0].startswith(expected)


def test_redis_passwords_never_appear_in_repr_or_issues(
    document: dict[str, Any], issues: Issues
) -> None:
    """Data-node and sentinel passwords are Secrets: masked in repr, never quoted in an issue."""
    settings = parsed(
        document,
        {
            "sentinel": {"master": "m", "addresses": ["a:1"], "password": "${SENTINEL_PASSWORD}"},
            "password": "${REDIS_PASSWORD}",
        },
    )
    assert "hunter2" not in repr(settings)
    document["session"]["redis"] = {"url": "http://:hunter2@cache", "password": 12345}
    reported = "\n".join(issues(document, ENVIRON))
    assert "hunter2" not in reported
    assert "12345" not in reported


README = Path(__file__).resolve().parents[2] / "README.md"
README_ENVIRON = {"IDGATE_REDIS_PASSWORD": "x", "IDGATE_REDIS_SENTINEL_PASSWORD": "y"}


def test_readme_shows_each_topology_as_a_valid_session_block(document: dict[str, Any]) -> None:
    """The README's three `session.redis` examples parse, one per topology, as written."""
    fenced = [
        block.split("```", 1)[0]
        for block in README.read_text(encoding="utf-8").split("```yaml")[1:]
    ]
    blocks = [yaml.safe_load(block) for block in fenced if "\n  redis:\n" in block]
    topologies = []
    for block in blocks:
        document["session"] = {"secret": document["session"]["secret"], **block["session"]}
        redis = parse_settings(document, README_ENVIRON).session.redis
        assert redis is not None
        topologies.append(redis.topology)
    assert topologies == [RedisTopology.SERVER, RedisTopology.SENTINEL, RedisTopology.CLUSTER]
