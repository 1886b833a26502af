"""A Redis Cluster re-sharding under idgate's store: the slot of a live session moves to another
master, key by key, while the store keeps using it; redis-py follows ASK during the move and MOVED
after it, so the session stays readable, writable and endable throughout."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import pytest
import redis

from proxy.sessions.redis_store import RedisStore
from proxy.sessions.store import InvalidSession
from tests.e2e.redis_topologies import Cluster, running_cluster
from tests.sessions.records import record

NAME: Final = "__Host-idgate"
MAX_AGE: Final = 3600


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as running:
        yield running


@pytest.fixture
async def store(cluster: Cluster) -> AsyncIterator[RedisStore]:
    opened = RedisStore(cluster.settings(), cookie_name=NAME)
    yield opened
    await opened.close()


def node(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=5.0)


class SlotMove:
    """One slot moved by hand the way `redis-cli --cluster reshard` does it."""

    def __init__(self, cluster: Cluster, key: bytes) -> None:
        self.ports = cluster.ports
        with node(self.ports[0]) as any_node:
            self.slot = int(any_node.execute_command("CLUSTER", "KEYSLOT", key))
            owners = any_node.execute_command("CLUSTER", "SLOTS")
        (self.source,) = (int(owner[2][1]) for owner in owners if owner[0] <= self.slot <= owner[1])
        self.target = next(port for port in self.ports if port != self.source)
        self.ids = {port: self._id(port) for port in self.ports}

    @staticmethod
    def _id(port: int) -> str:
        with node(port) as each:
            found = each.execute_command("CLUSTER", "MYID")
        return found.decode() if isinstance(found, bytes) else str(found)

    def begin(self) -> None:
        with node(self.target) as target:
            target.execute_command(
                "CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.ids[self.source]
            )
        with node(self.source) as source:
            source.execute_command(
                "CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.ids[self.target]
            )

    def migrate(self, key: bytes) -> None:
        with node(self.source) as source:
            source.execute_command("MIGRATE", "127.0.0.1", self.target, key, 0, 5000)

    def keys_left(self) -> list[bytes]:
        with node(self.source) as source:
            found: list[bytes] = source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 100)
        return found

    def finish(self) -> None:
        for port in (self.target, self.source, *self.ports):
            with node(port) as each:
                each.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", self.ids[self.target])


async def test_a_session_survives_its_slot_moving_to_another_master(
    cluster: Cluster, store: RedisStore
) -> None:
    """Before, during (ASK) and after (MOVED) the move of its slot, the session loads and saves
    on the same store instance, and a sign-out after the move ends it."""
    session = record()
    changes = await store.save(session, {}, max_age=MAX_AGE)
    cookies = {NAME: str(changes[0].value)}
    # The record's key, as the store's docstring names it: the hash tag is the session id's hash.
    key = f"idgate:s:{{{hashlib.sha256(session.session_id.encode()).hexdigest()}}}".encode()
    move = SlotMove(cluster, key)

    move.begin()
    assert await store.load(cookies) == session, "still on the source: served there"
    move.migrate(key)
    assert move.keys_left() == []
    assert await store.load(cookies) == session, "moved: the source answers ASK"
    touched = session.seen(session.created_at + 30)
    await store.save(touched, cookies, max_age=MAX_AGE)
    move.finish()
    assert await store.load(cookies) == touched, "slot reassigned: the source answers MOVED"
    with node(move.target) as target:
        assert target.exists(key) == 1
    await store.clear(cookies)
    with pytest.raises(InvalidSession, match="ended"):
        await store.load(cookies)
