"""The cookie store: the sealed record in the browser, chunked, bound to its name, revocable."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from proxy.config.model import Secret
from proxy.server.header_limits import MAX_FIELD_BYTES
from proxy.sessions.cookie_store import MAX_CHUNKS, CookieStore
from proxy.sessions.model import SessionRecord
from proxy.sessions.store import CookieChange, InvalidSession, SessionStore, SessionTooLarge
from tests.sessions.records import ACCESS_TOKEN, CREATED_AT, record

SECRET = Secret("a-session-secret-of-enough-entropy-0123456789")
OLD_SECRET = Secret("the-previous-session-secret-9876543210-abcdef")
NAME = "__Host-idgate"
LIFETIME = 12 * 3600
MAX_AGE = 3600


class Clock:
    def __init__(self, now: float = CREATED_AT) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store(
    *,
    secrets: Sequence[Secret] = (SECRET,),
    cookie_name: str = NAME,
    chunk_size: int = 3800,
    clock: Clock | None = None,
) -> CookieStore:
    return CookieStore(
        secrets,
        cookie_name=cookie_name,
        max_lifetime_seconds=LIFETIME,
        chunk_size=chunk_size,
        clock=clock or Clock(),
    )


def apply(jar: dict[str, str], changes: list[CookieChange]) -> dict[str, str]:
    """What the browser holds after these Set-Cookies (a deletion removes the cookie)."""
    result = dict(jar)
    for change in changes:
        if change.value is None:
            result.pop(change.name, None)
        else:
            result[change.name] = change.value
    return result


async def browser_with(
    session: SessionRecord, *, chunk_size: int = 3800, jar: dict[str, str] | None = None
) -> dict[str, str]:
    jar = jar or {}
    return apply(jar, await store(chunk_size=chunk_size).save(session, jar, max_age=MAX_AGE))


def big_record(size: int, *, session_id: str = "session-alice-1") -> SessionRecord:
    """A record whose claims make it about `size` bytes larger (many groups, say)."""
    return record(claims={"padding": "x" * size}, session_id=session_id)


async def sealed_length(session: SessionRecord) -> int:
    [change] = await store(chunk_size=1_000_000).save(session, {}, max_age=MAX_AGE)
    assert change.value is not None
    return len(change.value)


def test_cookie_store_is_a_session_store() -> None:
    """CookieStore fits the SessionStore seam the session manager is written against."""
    seam: SessionStore = store()
    assert isinstance(seam, CookieStore)


async def test_saved_session_loads_back() -> None:
    """A record saved into the browser's cookie is the record the next request loads."""
    session = record()
    changes = await store().save(session, {}, max_age=MAX_AGE)
    assert [(change.name, change.max_age) for change in changes] == [(NAME, MAX_AGE)]
    assert await store().load(apply({}, changes)) == session


async def test_cookie_does_not_reveal_the_record() -> None:
    """Neither the email nor the tokens can be read from the cookie value."""
    jar = await browser_with(record())
    assert all(secret not in jar[NAME] for secret in ("alice", ACCESS_TOKEN, "example.com"))


async def test_no_session_cookie_is_no_session() -> None:
    """A request without the session cookie (other cookies aside) has no session, not an error."""
    assert await store().load({}) is None
    assert await store().load({"_ga": "GA1.2.3", f"{NAME}_state": "x", f"{NAME}x_0": "y"}) is None


async def test_a_record_that_fits_exactly_stays_in_one_cookie() -> None:
    """A sealed record of exactly chunk_size characters travels in the base cookie alone."""
    session = big_record(500)
    length = await sealed_length(session)
    jar = await browser_with(session, chunk_size=length)
    assert list(jar) == [NAME]
    assert len(jar[NAME]) == length
    assert await store(chunk_size=length).load(jar) == session


async def test_one_character_more_splits_into_chunks() -> None:
    """One character over chunk_size and the record goes in `<name>_0`, `<name>_1`, nothing else."""
    session = big_record(500)
    length = await sealed_length(session)
    jar = await browser_with(session, chunk_size=length - 1)
    assert sorted(jar) == [f"{NAME}_0", f"{NAME}_1"]
    assert len(jar[f"{NAME}_0"]) == length - 1
    assert len(jar[f"{NAME}_1"]) == 1
    assert await store().load(jar) == session


async def test_large_record_spans_many_chunks_each_within_the_limit() -> None:
    """A record of many kilobytes loads back from chunks no larger than chunk_size."""
    session = big_record(20_000)
    count = -(-await sealed_length(session) // 3800)
    jar = await browser_with(session, chunk_size=3800)
    assert count > 2
    assert set(jar) == {f"{NAME}_{index}" for index in range(count)}
    assert all(len(value) <= 3800 for value in jar.values())
    assert await store().load(jar) == session


async def test_a_record_filling_every_chunk_is_saved_and_one_more_is_refused() -> None:
    """A sealed record of MAX_CHUNKS full chunks is written and loads back; with chunks one
    character smaller it would need one more, and save refuses it (the fix in the message)."""
    session = big_record(3000)
    chunk_size = -(-await sealed_length(session) // MAX_CHUNKS)
    jar = await browser_with(session, chunk_size=chunk_size)
    assert len(jar) == MAX_CHUNKS
    assert await store(chunk_size=chunk_size).load(jar) == session
    with pytest.raises(SessionTooLarge, match=r"more than the cookie store's 8: .*redis"):
        await store(chunk_size=chunk_size - 1).save(session, {}, max_age=MAX_AGE)


async def test_more_chunks_than_idgate_writes_do_not_load() -> None:
    """A chunk beyond MAX_CHUNKS makes the session invalid before anything is decrypted."""
    session = big_record(3000)
    chunk_size = -(-await sealed_length(session) // MAX_CHUNKS)
    jar = await browser_with(session, chunk_size=chunk_size)
    with pytest.raises(InvalidSession, match="more chunks than idgate writes"):
        await store(chunk_size=chunk_size).load(jar | {f"{NAME}_{MAX_CHUNKS}": "x"})


def test_the_most_chunks_fit_in_the_cookie_header_idgate_reads() -> None:
    """MAX_CHUNKS full chunks of the default size, named as on https, fit in one Cookie header
    idgate accepts, with 2 KiB left for the tools' own cookies."""
    header = "Cookie: " + "; ".join(
        f"__Host-_idgate_{index}={'x' * 3800}" for index in range(MAX_CHUNKS)
    )
    assert len(header) + 2048 < MAX_FIELD_BYTES


async def test_growing_into_chunks_deletes_the_whole_cookie() -> None:
    """When a session grows past one cookie, the base cookie is deleted along with the save."""
    jar = await browser_with(record(), chunk_size=1000)
    changes = await store(chunk_size=1000).save(big_record(3000), jar, max_age=MAX_AGE)
    assert CookieChange(name=NAME, value=None) in changes
    jar = apply(jar, changes)
    assert NAME not in jar
    assert await store().load(jar) == big_record(3000)


async def test_shrinking_deletes_chunks_no_longer_used() -> None:
    """A smaller record deletes the chunks the request carried that it no longer fills."""
    jar = await browser_with(big_record(3000), chunk_size=1000)
    assert len(jar) == 5
    changes = await store(chunk_size=1000).save(big_record(1500), jar, max_age=MAX_AGE)
    deleted = [change.name for change in changes if change.value is None]
    assert deleted == [f"{NAME}_3", f"{NAME}_4"]
    jar = apply(jar, changes)
    assert sorted(jar) == [f"{NAME}_{index}" for index in range(3)]
    assert await store().load(jar) == big_record(1500)


async def test_shrinking_to_one_cookie_deletes_every_chunk() -> None:
    """A record that fits again goes in the base cookie and every chunk is deleted."""
    jar = await browser_with(big_record(3000), chunk_size=1000)
    changes = await store(chunk_size=1000).save(record(), jar, max_age=MAX_AGE)
    assert [change.name for change in changes if change.value is None] == [
        f"{NAME}_{index}" for index in range(5)
    ]
    jar = apply(jar, changes)
    assert list(jar) == [NAME]
    assert await store().load(jar) == record()


@pytest.mark.parametrize("missing", [0, 1, 3])
async def test_a_missing_chunk_is_an_invalid_session(missing: int) -> None:
    """If the browser dropped any chunk, the session is refused rather than misread."""
    jar = await browser_with(big_record(3000), chunk_size=1000)
    del jar[f"{NAME}_{missing}"]
    with pytest.raises(InvalidSession):
        await store().load(jar)


async def test_a_missing_last_chunk_is_an_invalid_session() -> None:
    """Losing the final chunk (a contiguous, shorter set) is still refused."""
    jar = await browser_with(big_record(3000), chunk_size=1000)
    del jar[f"{NAME}_4"]
    with pytest.raises(InvalidSession):
        await store().load(jar)


async def test_an_extra_chunk_is_an_invalid_session() -> None:
    """A leftover chunk beyond the record's end makes the session invalid."""
    jar = await browser_with(big_record(3000), chunk_size=1000)
    jar[f"{NAME}_5"] = "AAAA"
    with pytest.raises(InvalidSession):
        await store().load(jar)


async def test_whole_and_chunked_cookies_together_are_invalid() -> None:
    """A base cookie next to chunks is ambiguous and refused."""
    jar = await browser_with(big_record(3000), chunk_size=1000)
    jar[NAME] = (await browser_with(record()))[NAME]
    with pytest.raises(InvalidSession, match="both"):
        await store().load(jar)


async def test_a_chunk_spliced_from_another_session_is_refused() -> None:
    """A chunk from another genuine session (another login) cannot be mixed into this one."""
    mine = await browser_with(big_record(3000), chunk_size=1000)
    theirs = await browser_with(big_record(3000, session_id="session-mallory"), chunk_size=1000)
    spliced = {**mine, f"{NAME}_2": theirs[f"{NAME}_2"]}
    with pytest.raises(InvalidSession):
        await store().load(spliced)


async def test_a_session_moved_to_another_cookie_name_does_not_open() -> None:
    """A sealed value copied under another cookie name, same secret, is refused."""
    jar = await browser_with(record())
    with pytest.raises(InvalidSession):
        await store(cookie_name="_idgate").load({"_idgate": jar[NAME]})


async def test_tampered_cookie_is_refused_without_echoing_it() -> None:
    """A modified cookie is an invalid session and the error does not repeat the cookie."""
    value = (await browser_with(record()))[NAME]
    tampered = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    with pytest.raises(InvalidSession) as caught:
        await store().load({NAME: tampered})
    assert tampered[:12] not in str(caught.value)


async def test_garbage_cookie_is_an_invalid_session() -> None:
    """Anything that is not a sealed record, however shaped, is an invalid session."""
    for value in ("", "x", "not;base64", "A" * 200):
        with pytest.raises(InvalidSession):
            await store().load({NAME: value})


async def test_a_session_outlives_a_secret_rotation() -> None:
    """A cookie sealed before a new secret was prepended still loads; the new save reseals."""
    before = await browser_with(record())
    rotated = store(secrets=(SECRET, OLD_SECRET))
    old_only = store(secrets=(OLD_SECRET,))
    with pytest.raises(InvalidSession):
        await old_only.load(before)
    assert await rotated.load(before) == record()
    resealed = apply(before, await rotated.save(record(), before, max_age=MAX_AGE))
    assert await store(secrets=(SECRET,)).load(resealed) == record()


async def test_clear_deletes_the_base_cookie_and_every_chunk() -> None:
    """Sign-out deletes every chunk the browser carries plus the base cookie."""
    jar = await browser_with(big_record(3000), chunk_size=1000)
    changes = await store().clear({**jar, "_ga": "GA1.2.3"})
    assert all(change.value is None for change in changes)
    assert sorted(change.name for change in changes) == sorted([NAME, *jar])
    assert apply(jar, changes) == {}
    assert [change.name for change in await store().clear({})] == [NAME]


async def test_back_channel_logout_by_sid_refuses_that_provider_session() -> None:
    """After a logout for a provider sid, cookies of that sid are refused; others are not."""
    cookie_store = store()
    ended = await browser_with(record(provider_sid="sid-laptop"))
    other = await browser_with(record(session_id="s2", provider_sid="sid-phone"))
    assert await cookie_store.end_sessions(sid="sid-laptop", sub=None) == 0
    with pytest.raises(InvalidSession, match="back-channel"):
        await cookie_store.load(ended)
    assert await cookie_store.load(other) is not None


async def test_back_channel_logout_by_sub_refuses_earlier_logins_only() -> None:
    """A logout of a subject refuses its sessions created until then, not later logins."""
    clock = Clock(CREATED_AT + 600)
    cookie_store = store(clock=clock)
    earlier = await browser_with(record(provider_sid=None))
    same_tick = await browser_with(record(session_id="s2", created_at=CREATED_AT + 600))
    bob = await browser_with(record(session_id="s3", subject="bob-sub"))
    assert await cookie_store.end_sessions(sid=None, sub="alice-sub") == 0
    later = await browser_with(record(session_id="s4", created_at=CREATED_AT + 601))
    for cookies in (earlier, same_tick):
        with pytest.raises(InvalidSession, match="back-channel"):
            await cookie_store.load(cookies)
    assert await cookie_store.load(bob) is not None
    assert await cookie_store.load(later) is not None


async def test_a_logout_with_sid_ends_only_that_provider_session() -> None:
    """With both sid and sub, only the named provider session ends (OIDC BCL 2.6)."""
    cookie_store = store()
    laptop = await browser_with(record(provider_sid="sid-laptop"))
    phone = await browser_with(record(session_id="s2", provider_sid="sid-phone"))
    await cookie_store.end_sessions(sid="sid-laptop", sub="alice-sub")
    with pytest.raises(InvalidSession):
        await cookie_store.load(laptop)
    assert await cookie_store.load(phone) is not None


async def test_revocations_are_forgotten_once_no_session_can_still_be_alive() -> None:
    """A revocation is held for the maximum session lifetime, then dropped to bound memory."""
    clock = Clock()
    cookie_store = store(clock=clock)
    cookies = await browser_with(record(provider_sid="sid-laptop"))
    await cookie_store.end_sessions(sid="sid-laptop", sub=None)
    clock.now += LIFETIME - 1
    with pytest.raises(InvalidSession):
        await cookie_store.load(cookies)
    clock.now += 2
    assert await cookie_store.load(cookies) is not None


async def test_refresh_lock_admits_one_holder_per_session() -> None:
    """While one request refreshes a session, others for it are told so; other sessions are not."""
    cookie_store = store()
    async with cookie_store.refresh_lock("s1") as first:
        async with cookie_store.refresh_lock("s1") as second:
            assert (first, second) == (True, False)
        async with cookie_store.refresh_lock("s2") as other:
            assert other is True
    async with cookie_store.refresh_lock("s1") as after:
        assert after is True


async def test_refresh_lock_is_released_when_the_refresh_fails() -> None:
    """A refresh that raises releases the lock, so the next request may try again."""
    cookie_store = store()
    with pytest.raises(RuntimeError):
        async with cookie_store.refresh_lock("s1"):
            raise RuntimeError("provider said no")
    async with cookie_store.refresh_lock("s1") as again:
        assert again is True


async def test_refresh_lock_across_concurrent_tasks() -> None:
    """Of several concurrent requests for one session exactly one gets to refresh."""
    cookie_store = store()
    entered = asyncio.Event()
    release = asyncio.Event()

    async def first() -> bool:
        async with cookie_store.refresh_lock("s1") as held:
            entered.set()
            await release.wait()
            return held

    async def latecomer() -> bool:
        await entered.wait()
        async with cookie_store.refresh_lock("s1") as held:
            return held

    holder = asyncio.create_task(first())
    late = await asyncio.gather(latecomer(), latecomer())
    release.set()
    assert (await holder, list(late)) == (True, [False, False])


async def test_ping_and_close_need_nothing() -> None:
    """The cookie store is always ready and has nothing to release."""
    cookie_store = store()
    await cookie_store.ping()
    await cookie_store.close()


async def test_a_cookie_opened_before_a_back_channel_logout_is_refused_after_it() -> None:
    """Opened cookies are remembered (no decryption per request), never past a revocation."""
    cookie_store = store()
    browser = await browser_with(record(provider_sid="sid-laptop"))
    assert await cookie_store.load(browser) == record(provider_sid="sid-laptop")
    await cookie_store.end_sessions(sid="sid-laptop", sub=None)
    with pytest.raises(InvalidSession, match="back-channel"):
        await cookie_store.load(browser)


async def test_remembered_cookies_stay_bounded_and_each_still_opens() -> None:
    cookie_store = store()
    browsers = [await browser_with(record(session_id=f"s{n}")) for n in range(1100)]
    for browser in browsers:
        await cookie_store.load(browser)
    loaded = [await cookie_store.load(browser) for browser in browsers[:5]]
    assert [session.session_id for session in loaded if session] == [f"s{n}" for n in range(5)]
    assert len(cookie_store._opened) <= 1024
