"""RedisStore without a server: configuration errors (the real-Redis tests are in tests/e2e)."""

from __future__ import annotations

import pytest

from proxy.config.model import Secret
from proxy.sessions.redis_store import RedisStore
from tests.sessions.records import record


def test_an_invalid_url_is_refused_without_echoing_it() -> None:
    """A redis_url of another scheme is a configuration error whose message holds no password."""
    with pytest.raises(ValueError, match="redis_url") as caught:
        RedisStore(Secret("ftp://:hunter2@redis.internal"), cookie_name="_idgate")
    assert "hunter2" not in str(caught.value)
    assert caught.value.__suppress_context__


async def test_a_saved_session_needs_a_positive_lifetime() -> None:
    """Saving with max_age 0 is a programming error, refused before Redis is asked."""
    store = RedisStore(Secret("redis://127.0.0.1:1/0"), cookie_name="_idgate")
    with pytest.raises(ValueError, match="max_age"):
        await store.save(record(), {}, max_age=0)
    await store.close()
