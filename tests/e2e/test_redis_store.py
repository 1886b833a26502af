"""The Redis store against real Redis, as one server, behind Sentinel, and as a three-master
Cluster: shared by replicas, ciphertext only, every script on one slot, fail closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster

from proxy.config.model import RedisSettings
from proxy.sessions.model import SignInOrigin
from proxy.sessions.redis_client import connect
from proxy.sessions.redis_store import LOCK_MILLISECONDS, RedisStore
from proxy.sessions.session_index import SessionIndex
from proxy.sessions.store import CookieChange, InvalidSession, SessionStore, StoreUnavailable
from tests.e2e.redis_topologies import Cluster, SentinelSet, running_cluster, running_sentinel_set
from tests.sessions.records import ACCESS_TOKEN, CREATED_AT, ID_TOKEN, REFRESH_TOKEN, record

NAME = "__Host-idgate"
MAX_AGE = 3600
TOPOLOGIES = ["server", "sentinel", "cluster"]
#: Stopping a topology: its own instance per test (a Sentinel set's is covered under failover).
STOPPABLE = ["server", "cluster"]

RawClient = Redis | RedisCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One three-master cluster for the module; each test starts from an empty one."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """One primary, replica and three sentinels for the module; each test starts empty."""
    with running_sentinel_set(tmp_path_factory.mktemp("sentinel")) as running:
        yield running


@pytest.fixture(params=TOPOLOGIES)
def topology(request: pytest.FixtureRequest) -> RedisSettings:
    """The same tests on one redis-server, behind Sentinel, and on a Redis Cluster."""
    if request.param == "server":
        return RedisSettings(url=request.getfixturevalue("redis_server").url)
    if request.param == "sentinel":
        watched: SentinelSet = request.getfixturevalue("sentinels")
        with watched.primary_client() as primary:
            primary.flushall()
        return watched.settings()
    running: Cluster = request.getfixturevalue("cluster")
    running.flush()
    return running.settings()


@pytest.fixture
async def replicas(topology: RedisSettings) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two stores sharing one Redis, as two idgate replicas behind a load balancer would."""
    first = RedisStore(topology, cookie_name=NAME)
    second = RedisStore(topology, cookie_name=NAME)
    yield first, second
    await first.close()
    await second.close()


@pytest.fixture
async def raw(topology: RedisSettings) -> AsyncIterator[RawClient]:
    """A plain client to look at what Redis actually holds."""
    connection = connect(topology, timeout_seconds=5.0)
    yield connection.client
    await connection.close()


def cookies_from(changes: list[CookieChange]) -> dict[str, str]:
    [change] = changes
    assert change.name == NAME
    assert change.value is not None
    return {NAME: change.value}


async def record_keys(raw: RawClient) -> list[bytes]:
    return [key async for key in raw.scan_iter(match="idgate:s:*")]


async def string_at(raw: RawClient, key: bytes) -> bytes:
    value = await raw.get(key)
    assert isinstance(value, bytes)
    return value


async def test_redis_store_is_a_session_store(replicas: tuple[RedisStore, RedisStore]) -> None:
    """RedisStore fits the SessionStore seam the session manager is written against."""
    seam: SessionStore = replicas[0]
    await seam.ping()


async def test_session_saved_by_one_replica_loads_on_another(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """A browser signed in through one replica is signed in at every replica."""
    first, second = replicas
    session = record()
    changes = await first.save(session, {}, max_age=MAX_AGE)
    assert [(change.name, change.max_age) for change in changes] == [(NAME, MAX_AGE)]
    assert await second.load(cookies_from(changes)) == session
    assert await first.load(cookies_from(changes)) == session


async def test_no_cookie_is_no_session(replicas: tuple[RedisStore, RedisStore]) -> None:
    """A request without the ticket cookie has no session, and costs no error."""
    assert await replicas[0].load({"_ga": "GA1.2.3"}) is None


async def test_redis_holds_no_plaintext(
    replicas: tuple[RedisStore, RedisStore], raw: RawClient
) -> None:
    """No key or value in Redis shows the user's email, name, tokens, ids or the ticket's key."""
    session = record(provider_sid="provider-sid-visible?")
    cookies = cookies_from(await replicas[0].save(session, {}, max_age=MAX_AGE))
    ticket = cookies[NAME]
    secrets = [
        b"alice",
        b"Alice Liddell",
        b"example.com",
        ACCESS_TOKEN.encode(),
        REFRESH_TOKEN.encode(),
        ID_TOKEN.encode(),
        session.session_id.encode(),
        session.subject.encode(),
        b"provider-sid-visible",
        *(part.encode() for part in ticket.split(".")[1:]),
    ]
    contents: list[bytes] = []
    async for key in raw.scan_iter():
        contents.append(key)
        kind = await raw.type(key)
        if kind == b"string":
            contents.append(await string_at(raw, key))
        elif kind == b"set":
            contents.extend(
                member for member in await raw.smembers(key) if isinstance(member, bytes)
            )
        else:
            pytest.fail(f"unexpected {kind!r} in Redis")
    assert len(contents) >= 3
    assert [secret for secret in secrets if any(secret in item for item in contents)] == []


async def test_session_has_the_given_lifetime_in_redis(
    replicas: tuple[RedisStore, RedisStore], raw: RawClient
) -> None:
    """The record expires from Redis after max_age; its logout indexes live at least as long."""
    await replicas[0].save(record(), {}, max_age=MAX_AGE)
    [key] = await record_keys(raw)
    assert MAX_AGE - 5 <= await raw.ttl(key) <= MAX_AGE
    await replicas[0].save(record(session_id="short"), {}, max_age=60)
    indexes = [key async for key in raw.scan_iter(match="idgate:s[iu][db]:*")]
    assert len(indexes) == 2
    for index in indexes:
        assert MAX_AGE - 5 <= await raw.ttl(index) <= MAX_AGE


async def test_saving_again_keeps_the_ticket_and_extends_its_life(
    replicas: tuple[RedisStore, RedisStore], raw: RawClient
) -> None:
    """Re-saving a session keeps the same ticket, updates the record and sets the new max-age."""
    first, second = replicas
    cookies = cookies_from(await first.save(record(), {}, max_age=60))
    seen = record().seen(record().created_at + 30)
    changes = await second.save(seen, cookies, max_age=MAX_AGE)
    assert changes == [CookieChange(name=NAME, value=cookies[NAME], max_age=MAX_AGE)]
    assert await first.load(cookies) == seen
    [key] = await record_keys(raw)
    assert await raw.ttl(key) > 60


async def test_a_new_login_gets_a_new_ticket_and_ends_the_old_session(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """Signing in again replaces the ticket; the previous session cannot be loaded any more."""
    first, second = replicas
    old = cookies_from(await first.save(record(), {}, max_age=MAX_AGE))
    new_session = record(session_id="session-alice-2")
    new = cookies_from(await second.save(new_session, old, max_age=MAX_AGE))
    assert new[NAME] != old[NAME]
    assert await first.load(new) == new_session
    with pytest.raises(InvalidSession, match="ended"):
        await first.load(old)


async def test_clear_on_one_replica_ends_the_session_everywhere(
    replicas: tuple[RedisStore, RedisStore], raw: RawClient
) -> None:
    """After sign-out through one replica, the old ticket is refused by every replica."""
    first, second = replicas
    cookies = cookies_from(await first.save(record(), {}, max_age=MAX_AGE))
    assert await second.clear(cookies) == [CookieChange(name=NAME, value=None)]
    assert await record_keys(raw) == []
    for store in replicas:
        with pytest.raises(InvalidSession, match="ended"):
            await store.load(cookies)


@pytest.mark.parametrize("ending", ["sign-out", "back-channel logout"])
async def test_a_session_ended_elsewhere_is_not_revived_by_a_late_save(
    replicas: tuple[RedisStore, RedisStore], ending: str
) -> None:
    """A request that loaded a session before another replica ended it does not bring it back
    when it saves its touch or refresh afterwards."""
    first, second = replicas
    cookies = cookies_from(await first.save(record(), {}, max_age=MAX_AGE))
    loaded = await first.load(cookies)
    assert loaded is not None
    if ending == "sign-out":
        await second.clear(cookies)
    else:
        assert await second.end_sessions(sid=None, sub=loaded.subject) == 1
    touched = loaded.seen(loaded.created_at + 30)
    assert cookies_from(await first.save(touched, cookies, max_age=MAX_AGE)) == cookies
    for store in replicas:
        with pytest.raises(InvalidSession, match="ended"):
            await store.load(cookies)


async def test_clear_without_a_readable_ticket_still_deletes_the_cookie(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """Sign-out with no or a garbled ticket deletes the cookie and touches no record."""
    for cookies in ({}, {NAME: "garbage"}):
        assert await replicas[0].clear(cookies) == [CookieChange(name=NAME, value=None)]


async def test_back_channel_logout_by_sid_ends_that_provider_session(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """A logout token with a sid ends the sessions of that provider session, at every replica."""
    first, second = replicas
    laptop = cookies_from(await first.save(record(provider_sid="sid-laptop"), {}, max_age=MAX_AGE))
    phone_session = record(session_id="s2", provider_sid="sid-phone")
    phone = cookies_from(await first.save(phone_session, {}, max_age=MAX_AGE))
    assert await second.end_sessions(sid="sid-laptop", sub="alice-sub") == 1
    with pytest.raises(InvalidSession):
        await first.load(laptop)
    assert await first.load(phone) == phone_session
    assert await second.end_sessions(sid="sid-laptop", sub=None) == 0


async def test_back_channel_logout_by_sub_ends_every_session_of_the_user(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """A logout token with only a sub ends all that user's sessions and no one else's."""
    first, second = replicas
    alice = [
        cookies_from(await first.save(record(session_id=f"s{n}"), {}, max_age=MAX_AGE))
        for n in range(3)
    ]
    bob_session = record(session_id="bob-1", subject="bob-sub", provider_sid=None)
    bob = cookies_from(await first.save(bob_session, {}, max_age=MAX_AGE))
    await second.clear(alice[2])
    assert await second.end_sessions(sid=None, sub="alice-sub") == 2
    for cookies in alice:
        with pytest.raises(InvalidSession):
            await first.load(cookies)
    assert await first.load(bob) == bob_session
    assert await first.end_sessions(sid=None, sub=None) == 0


async def test_forged_tickets_are_invalid_sessions(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """A ticket with another key, another session id or garbage does not open any record."""
    store = replicas[0]
    version, session_id, key = cookies_from(await store.save(record(), {}, max_age=MAX_AGE))[
        NAME
    ].split(".")
    other_key = ("B" if key[0] == "A" else "A") + key[1:]
    forged = [
        f"{version}.{session_id}.{other_key}",
        f"{version}.{session_id}.{key[:-2]}",
        f"v2.{session_id}.{key}",
        f"{version}.{session_id}",
        f"{version}.{session_id}.{key}.x",
        "",
        "v1.!!.??",
    ]
    for ticket in forged:
        with pytest.raises(InvalidSession) as caught:
            await store.load({NAME: ticket})
        assert key not in str(caught.value)


async def test_a_record_moved_under_another_session_key_does_not_open(
    replicas: tuple[RedisStore, RedisStore], raw: RawClient
) -> None:
    """Someone with write access to Redis cannot swap one session's ciphertext into another's."""
    store = replicas[0]
    mine = cookies_from(await store.save(record(session_id="mine"), {}, max_age=MAX_AGE))
    before = set(await record_keys(raw))
    await store.save(replace(record(session_id="theirs"), user="mallory"), {}, max_age=MAX_AGE)
    [mine_key] = before
    [theirs_key] = set(await record_keys(raw)) - before
    await raw.set(mine_key, await string_at(raw, theirs_key))
    with pytest.raises(InvalidSession, match="does not open"):
        await store.load(mine)


async def test_refresh_lock_is_exclusive_across_replicas(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """While one replica refreshes a session, another is told so; afterwards it may refresh."""
    first, second = replicas
    async with first.refresh_lock("s1") as held:
        async with second.refresh_lock("s1") as other:
            assert (held, other) == (True, False)
        async with second.refresh_lock("s2") as unrelated:
            assert unrelated is True
    async with second.refresh_lock("s1") as after:
        assert after is True


async def test_refresh_lock_expires_and_never_releases_another_holder(
    replicas: tuple[RedisStore, RedisStore], raw: RawClient
) -> None:
    """The lock carries an expiry, and a holder whose lock expired leaves the next one's alone."""
    first, _ = replicas
    async with first.refresh_lock("s1") as held:
        assert held is True
        [lock] = [key async for key in raw.scan_iter(match="idgate:lock:*")]
        assert 0 < await raw.pttl(lock) <= LOCK_MILLISECONDS
        await raw.set(lock, b"the-next-holder")
    assert await raw.get(lock) == b"the-next-holder"


@pytest.mark.parametrize("kind", STOPPABLE)
async def test_redis_down_fails_closed(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """With Redis gone every operation raises StoreUnavailable, naming no URL or socket."""
    if kind == "server":
        server = request.getfixturevalue("redis_server")
        await redis_down_fails_closed(
            RedisSettings(url=server.url), server.stop, str(server.socket)
        )
        return
    with running_cluster(tmp_path) as own:
        await redis_down_fails_closed(own.settings(), own.stop, str(own.ports[0]))


async def redis_down_fails_closed(
    settings: RedisSettings, stop: Callable[[], None], address: str
) -> None:
    store = RedisStore(settings, cookie_name=NAME)
    cookies = cookies_from(await store.save(record(), {}, max_age=MAX_AGE))
    stop()
    attempts: list[Callable[[], Awaitable[object]]] = [
        store.ping,
        lambda: store.load(cookies),
        lambda: store.save(record(), cookies, max_age=MAX_AGE),
        lambda: store.clear(cookies),
        lambda: store.end_sessions(sid="provider-sid-1", sub=None),
    ]
    for attempt in attempts:
        with pytest.raises(StoreUnavailable) as caught:
            await attempt()
        assert address not in str(caught.value)
        assert "unix" not in str(caught.value)
        assert caught.value.__suppress_context__
    with pytest.raises(StoreUnavailable):
        async with store.refresh_lock("s1"):
            pytest.fail("the lock must not be granted without Redis")
    await store.close()


LAPTOP = SignInOrigin.of(issuer="https://id.example", client="203.0.113.7", user_agent="Firefox")
PHONE = SignInOrigin.of(issuer="https://id.example", client="198.51.100.9", user_agent="Safari")


async def test_sign_ins_are_listed_by_user_with_nothing_secret_in_the_index(
    replicas: tuple[RedisStore, RedisStore], raw: RawClient
) -> None:
    """Two sign-ins of alice through two replicas are listed by either, with their handles,
    addresses and user agents; bob's is his alone; the index holds no session id, token or
    ticket part, and a signed-out session is no longer listed."""
    first, second = replicas
    laptop = record(session_id="alice-laptop")
    phone = record(session_id="alice-phone", created_at=CREATED_AT + 1)
    laptop_cookies = cookies_from(await first.save(laptop, {}, max_age=MAX_AGE, origin=LAPTOP))
    phone_cookies = cookies_from(await second.save(phone, {}, max_age=60, origin=PHONE))
    bob = replace(record(session_id="bob-1", subject="bob-sub"), user="bob")
    await first.save(bob, {}, max_age=MAX_AGE, origin=LAPTOP)

    listed = await second.index.of_user("alice")
    assert [(s.handle, s.client, s.user_agent) for s in listed] == [
        (laptop.handle, "203.0.113.7", "Firefox"),
        (phone.handle, "198.51.100.9", "Safari"),
    ]
    assert {(s.user, s.subject, s.issuer) for s in listed} == {
        ("alice", "alice-sub", "https://id.example")
    }
    assert [s.handle for s in await first.index.of_user("bob")] == [bob.handle]

    index_contents: list[bytes] = []
    async for key in raw.scan_iter(match="idgate:u[si]:*"):
        index_contents.append(key)
        if await raw.type(key) == b"hash":
            details = await raw.hgetall(key)
            items: list[object] = [*details.keys(), *details.values()]
        else:
            items = list(await raw.zrange(key, 0, -1))
        index_contents.extend(item for item in items if isinstance(item, bytes))
        # The index lives no longer than the longest session it names.
        assert 0 < await raw.ttl(key) <= MAX_AGE
    secrets = [
        b"alice-laptop",
        b"alice-phone",
        ACCESS_TOKEN.encode(),
        REFRESH_TOKEN.encode(),
        ID_TOKEN.encode(),
        *(part.encode() for part in laptop_cookies[NAME].split(".")[1:]),
        *(part.encode() for part in phone_cookies[NAME].split(".")[1:]),
    ]
    assert len(index_contents) >= 4
    assert [secret for secret in secrets if any(secret in item for item in index_contents)] == []

    await first.clear(phone_cookies)
    assert [s.handle for s in await second.index.of_user("alice")] == [laptop.handle]


async def test_a_resave_moves_last_seen_and_expiry_but_never_revives_an_entry(
    replicas: tuple[RedisStore, RedisStore],
) -> None:
    """A touch (a re-save) moves the listed last-seen time and expiry; a re-save of a session
    that was never indexed adds nothing."""
    first, second = replicas
    session = record()
    cookies = cookies_from(await first.save(session, {}, max_age=60, origin=LAPTOP))
    [before] = await first.index.of_user("alice")
    assert before.last_seen_at == session.created_at
    touched = session.seen(session.created_at + 600)
    await second.save(touched, cookies, max_age=MAX_AGE)
    [after] = await first.index.of_user("alice")
    assert after.last_seen_at == session.created_at + 600
    assert after.created_at == session.created_at
    assert after.expires_at > before.expires_at + MAX_AGE - 120

    unindexed = record(session_id="from-before-the-index")
    old = cookies_from(await first.save(unindexed, {}, max_age=MAX_AGE))
    await first.save(unindexed.seen(unindexed.created_at + 5), old, max_age=MAX_AGE)
    assert [s.handle for s in await first.index.of_user("alice")] == [session.handle]


async def test_index_entries_expire_with_their_sessions_and_are_capped_per_user(
    topology: RedisSettings,
) -> None:
    """An entry is listed until its session's expiry and no longer, and a user signing in past
    the cap keeps only the sessions that expire last."""
    now = [CREATED_AT]
    connection = connect(topology, timeout_seconds=5.0)
    index = SessionIndex(connection, max_per_user=3, clock=lambda: now[0])

    async def sign_in(name: str, max_age: int) -> None:
        session = record(session_id=name)
        await connection.client.set(index.record_key(session.handle), b"sealed", ex=MAX_AGE)
        await index.add(session, LAPTOP, max_age=max_age)

    async def listed() -> set[str]:
        return {session.handle for session in await index.of_user("alice")}

    def handles(*names: str) -> set[str]:
        return {record(session_id=name).handle for name in names}

    try:
        for n in range(5):
            await sign_in(f"s{n}", 60 + n)
        assert await listed() == handles("s2", "s3", "s4")
        now[0] = CREATED_AT + 62.5
        await sign_in("later", 600)
        assert await listed() == handles("s3", "s4", "later")
        now[0] = CREATED_AT + 64.5
        assert await listed() == handles("later")
    finally:
        await connection.close()
