"""The Redis store over TLS with a client certificate, as an ACL user allowed only idgate's keys:
the settings THREAT_MODEL.md asks operators for, against a real redis-server."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import pytest

from proxy.config.model import RedisSettings, RedisTLSSettings, Secret
from proxy.demo.ports import free_loopback_ports
from proxy.sessions.redis_store import RedisStore
from proxy.sessions.store import InvalidSession, StoreUnavailable
from tests.e2e.redis_topologies import RedisProcess
from tests.e2e.tools import require_tool
from tests.sessions.records import record
from tests.support.certificates import CertificateAuthority

#: asyncio (Python 3.11) may leave the socket of a TLS connection that Redis refused unclosed
#: until garbage collection; the refusal tests collect it themselves and ignore that warning.
LEAKS_REFUSED_SOCKET = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
NAME: Final = "__Host-idgate"
PASSWORD: Final = "acl-hunter2-password"


@dataclass(frozen=True)
class TLSRedis:
    settings: RedisSettings
    """rediss:// with the CA, a client certificate, and the `idgate` ACL user."""


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TLSRedis]:
    """A redis-server that speaks only TLS, requires client certificates, has no default user,
    and lets user `idgate` touch nothing but `idgate:*`."""
    server = require_tool("redis-server", "Redis backs the session store of replicas")
    authority = CertificateAuthority.create()
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(authority.root.pem)
    server_cert, server_key = authority.issue(ips=("127.0.0.1",), server=True).write(
        tmp_path, "server"
    )
    client_cert, client_key = authority.issue(common_name="idgate").write(tmp_path, "client")
    port = free_loopback_ports(1)[0]
    config = tmp_path / "redis.conf"
    config.write_text(
        "\n".join(
            [
                "port 0",
                "bind 127.0.0.1",
                f"tls-port {port}",
                f"tls-cert-file {server_cert}",
                f"tls-key-file {server_key}",
                f"tls-ca-cert-file {ca_file}",
                "tls-auth-clients yes",
                'save ""',
                "appendonly no",
                f"dir {tmp_path}",
                "user default off",
                f"user idgate on >{PASSWORD} ~idgate:* &* +@all",
                "",
            ]
        ),
        encoding="utf-8",
    )
    process = RedisProcess([server, str(config)], tmp_path, "redis-tls", "ready to accept")
    try:
        yield TLSRedis(
            settings=RedisSettings(
                url=Secret(f"rediss://127.0.0.1:{port}/0"),
                username="idgate",
                password=Secret(PASSWORD),
                tls=RedisTLSSettings(ca_file=ca_file, cert_file=client_cert, key_file=client_key),
            )
        )
    finally:
        process.stop()


@pytest.fixture
async def store(tls_redis: TLSRedis) -> AsyncIterator[RedisStore]:
    opened = RedisStore(tls_redis.settings, cookie_name=NAME)
    yield opened
    await opened.close()


async def test_sessions_work_over_tls_as_a_restricted_acl_user(store: RedisStore) -> None:
    """Save, load, the refresh lock and a back-channel logout all run over TLS as `idgate`,
    whose ACL allows only `idgate:*` keys: every key and script stays inside the prefix."""
    session = record()
    changes = await store.save(session, {}, max_age=3600)
    cookies = {NAME: str(changes[0].value)}
    assert await store.load(cookies) == session
    async with store.refresh_lock(session.session_id) as held:
        assert held is True
    assert await store.end_sessions(sid=None, sub=session.subject) == 1
    with pytest.raises(InvalidSession):
        await store.load(cookies)


@LEAKS_REFUSED_SOCKET
async def test_a_wrong_password_fails_closed_without_echoing_it(tls_redis: TLSRedis) -> None:
    """Redis refusing the password is StoreUnavailable, naming neither password."""
    refused = RedisStore(
        replace(tls_redis.settings, password=Secret("wrong-hunter2")), cookie_name=NAME
    )
    with pytest.raises(StoreUnavailable) as caught:
        await refused.ping()
    assert "hunter2" not in str(caught.value)
    await refused.close()
    gc.collect()


@LEAKS_REFUSED_SOCKET
async def test_without_the_client_certificate_redis_is_unavailable(tls_redis: TLSRedis) -> None:
    """Redis requires a client certificate: without one, the store fails closed."""
    assert tls_redis.settings.tls is not None
    settings = replace(
        tls_redis.settings, tls=RedisTLSSettings(ca_file=tls_redis.settings.tls.ca_file)
    )
    refused = RedisStore(settings, cookie_name=NAME)
    with pytest.raises(StoreUnavailable):
        await refused.ping()
    await refused.close()
    gc.collect()


async def test_keys_outside_the_acl_prefix_are_refused(tls_redis: TLSRedis) -> None:
    """The ACL really limits the user: a store with another key prefix is refused by Redis."""
    other = RedisStore(tls_redis.settings, cookie_name=NAME, key_prefix="other:")
    with pytest.raises(StoreUnavailable, match="NoPermissionError"):
        await other.save(record(), {}, max_age=60)
    await other.close()
