"""`session.redis`: one Redis server, a Sentinel-managed primary, or a Cluster, with ACL and TLS.

The older `session.redis_url: URL` is read as `session.redis: {url: URL}`. Exactly one topology;
passwords are Secrets (write them as `${VAR}`), so neither a log nor `idgate check` shows them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from proxy.config.addresses import redis_node, redis_url
from proxy.config.model import (
    RedisNode,
    RedisSentinelSettings,
    RedisSettings,
    RedisTLSSettings,
)
from proxy.config.reader import Section, given
from proxy.config.values import InvalidValueError, secret, text

_TOPOLOGIES = ("url", "sentinel", "cluster")


def parse_redis(session: Section) -> RedisSettings | None:
    """The Redis settings from `redis_url` or the `redis` block; None when neither is written."""
    session.has("redis_url")
    session.has("redis")
    url_given = session.peek("redis_url") is not None
    block_given = session.peek("redis") is not None
    if url_given and block_given:
        session.issue("write the URL as redis.url, not both redis_url and redis", key="redis_url")
    if url_given:
        url = session.get("redis_url", redis_url)
        return None if url is None else RedisSettings(url=url)
    if not block_given:
        return None
    return _parse_block(session.section("redis"))


def _parse_block(block: Section) -> RedisSettings | None:
    written = [name for name in _TOPOLOGIES if block.has(name) and block.peek(name) is not None]
    url = block.get("url", redis_url)
    sentinel = _parse_sentinel(block.section("sentinel")) if "sentinel" in written else None
    nodes = _parse_cluster(block.section("cluster")) if "cluster" in written else None
    username = block.get("username", text)
    password = block.get("password", secret)
    tls = None
    if block.has("tls"):
        # `tls:` written empty turns TLS on with the system's CAs and no client certificate.
        tls = _parse_tls(block.section("tls"))
    block.close()
    if not written:
        block.issue("needs one of url, sentinel or cluster")
        return None
    if len(written) > 1:
        block.issue(f"exactly one of url, sentinel or cluster, not {' and '.join(written)}")
        return None
    if url is not None and tls is not None and urlsplit(url.reveal()).scheme.lower() != "rediss":
        block.issue("TLS to a single server is a rediss:// url", key="tls")
    if url is None and sentinel is None and not nodes:
        return None
    return RedisSettings(
        url=url,
        sentinel=sentinel,
        cluster_nodes=nodes or (),
        **given(username=username, password=password, tls=tls),
    )


def _parse_cluster(section: Section) -> tuple[RedisNode, ...] | None:
    nodes = section.get_list("nodes", redis_node, required=True)
    section.close()
    return nodes


def _parse_sentinel(section: Section) -> RedisSentinelSettings | None:
    master = section.get("master", text, required=True)
    addresses = section.get_list("addresses", redis_node, required=True)
    username = section.get("username", text)
    password = section.get("password", secret)
    section.close()
    if master is None or not addresses:
        return None
    return RedisSentinelSettings(
        master=master, addresses=addresses, **given(username=username, password=password)
    )


def _parse_tls(section: Section) -> RedisTLSSettings:
    files = {key: section.get(key, _file) for key in ("ca_file", "cert_file", "key_file")}
    section.close()
    for have, need in (("cert_file", "key_file"), ("key_file", "cert_file")):
        if section.peek(have) is not None and section.peek(need) is None:
            section.issue(f"needs {need} too", key=have)
    return RedisTLSSettings(**given(**files))


def _file(value: object) -> Path:
    path = Path(text(value))
    if not path.is_file():
        raise InvalidValueError("no such file")
    return path
