"""What a worker loads depends on its config: redis-py only when the config names a Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.python_process import run_python

_COOKIE_SESSIONS: dict[str, Any] = {"secret": "0123456789abcdef0123456789abcdef"}
_REDIS_SESSIONS: dict[str, Any] = {
    **_COOKIE_SESSIONS,
    "store": "redis",
    "redis": {"url": "redis://127.0.0.1:9"},
}

#: A worker's modules imported and its session store built as `build_runtime` builds it, in a
#: fresh interpreter; prints whether redis-py is loaded, the store and its session index.
PROGRAM = """
import json, sys
import proxy.server.run
from proxy.config.load import parse_settings
from proxy.runtime import build_store
from proxy.server.admin import session_index_of
from proxy.sessions.cookies import CookieJar
from proxy.sessions.revocation_list import build_revocation_list
document = {{
    "public_url": "https://idgate.example.com",
    "oidc": {{"issuer": "https://login.example.com", "client_id": "idgate"}},
    "session": json.loads({session!r}),
    "routes": [{{"name": "app", "upstream": "http://127.0.0.1:8080", "public": True}}],
}}
settings = parse_settings(document, {{}})
store = build_store(settings, CookieJar.from_settings(settings), build_revocation_list(settings))
print("redis" in sys.modules, type(store).__name__, type(session_index_of(store)).__name__)
"""


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        (_COOKIE_SESSIONS, ["False", "CookieStore", "NoneType"]),
        (_REDIS_SESSIONS, ["True", "RedisStore", "SessionIndex"]),
    ],
)
def test_a_worker_loads_redis_py_only_when_its_config_names_a_redis(
    session: dict[str, Any], expected: list[str]
) -> None:
    """A worker with the cookie store never imports redis-py (about 9 MB of each worker's
    memory); one with the Redis store does, and builds it."""
    result = run_python(PROGRAM.format(session=json.dumps(session)))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected
