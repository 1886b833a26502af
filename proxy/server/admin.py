"""The admin endpoints on the metrics listener: list, add and lift revocations (`idgate revoke`),
and list a user's sessions with the Redis store (`idgate sessions`).

The metrics listener is private, but whoever may scrape it must not end sessions: every admin
request carries `Authorization: Bearer <admin token>`, the token being derived from a session
secret (proxy/keyderive.py, its own purpose), so every worker, replica and the `idgate` command
that reads the same config agree on it with nothing else to distribute. Any configured secret's
token is accepted (rotation), the secrets being those of the configuration current at each
request (a reload that rotates them takes effect at once); a missing or wrong one is 401,
compared in constant time.

Every revocation and lift is one decision-log line and counted in
`idgate_admin_revocations_total{action,kind}`; `idgate_revocations_active` is the list's size.
Every session listing is a decision-log line too (who looked up which user), counted in
`idgate_admin_session_listings_total`.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.config.model import Secret
from proxy.keyderive import derive_key
from proxy.observability.decision_log import log_decision
from proxy.sessions.cookie_store import CookieStore
from proxy.sessions.model import is_handle
from proxy.sessions.revocation_list import RevocationList
from proxy.sessions.revocations import MAX_VALUE_CHARS, Revocation, RevocationKind
from proxy.sessions.store import SessionStore, StoreUnavailable

if TYPE_CHECKING:
    from proxy.sessions.session_index import IndexedSession, SessionIndex

PATH: Final = "/admin/revocations"
SESSIONS_PATH: Final = "/admin/sessions"
_PURPOSE: Final = b"idgate admin token v1"
#: An admin request body is one small JSON object.
MAX_BODY_BYTES: Final = 4096
#: What an operator may revoke; `sid` and `sub` come only from the provider's logout tokens.
_OPERATOR_KINDS: Final[dict[object, RevocationKind]] = {
    kind.value: kind for kind in (RevocationKind.USER, RevocationKind.SESSION)
}

_T = TypeVar("_T")


def admin_token(secret: Secret) -> str:
    """The bearer token the admin endpoints accept for this session secret."""
    return derive_key(secret, _PURPOSE).hex()


def session_index_of(store: SessionStore) -> SessionIndex | None:
    """The index a store keeps of its sessions: the Redis store's; the cookie store has none."""
    if isinstance(store, CookieStore):
        return None
    # redis-py only when the config names a Redis (proxy/sessions/redis_client.py says why).
    from proxy.sessions.redis_store import RedisStore  # noqa: PLC0415

    return store.index if isinstance(store, RedisStore) else None


class AdminApi:
    def __init__(
        self,
        secrets: Callable[[], Sequence[Secret]],
        revocations: Callable[[], RevocationList],
        registry: CollectorRegistry,
        sessions: Callable[[], SessionIndex | None] = lambda: None,
    ) -> None:
        self._secrets = secrets
        self._revocations = revocations
        self._sessions = sessions
        self._listings = Counter(
            "idgate_admin_session_listings",
            "Session listings through the admin endpoints (idgate sessions).",
            registry=registry,
        )
        self._actions = Counter(
            "idgate_admin_revocations",
            "Revocations added and lifted through the admin endpoints (idgate revoke), by kind.",
            ["action", "kind"],
            registry=registry,
        )
        active = Gauge(
            "idgate_revocations_active",
            "Revocations in force as this process last read them (users, sessions, logouts).",
            registry=registry,
        )
        active.set_function(lambda: len(self._revocations().view))

    def install(self, app: web.Application) -> None:
        app.router.add_get(PATH, self._list)
        app.router.add_post(PATH, self._revoke)
        app.router.add_delete(PATH, self._lift)
        app.router.add_get(SESSIONS_PATH, self._list_sessions)

    async def _list(self, request: web.Request) -> web.Response:
        self._authorize(request)
        revocations = self._revocations()
        await _reaching(revocations.sync())
        return web.json_response({"revocations": [_entry(e) for e in revocations.view.active()]})

    async def _revoke(self, request: web.Request) -> web.Response:
        self._authorize(request)
        kind, value = await _target(request)
        entry = await _reaching(self._revocations().revoke(kind, value))
        self._record("revoke", kind, value, request)
        return web.json_response(_entry(entry), status=201)

    async def _lift(self, request: web.Request) -> web.Response:
        self._authorize(request)
        kind, value = await _target(request)
        lifted = await _reaching(self._revocations().lift(kind, value))
        self._record("lift", kind, value, request)
        return web.json_response({"kind": kind.value, "value": value, "was_revoked": lifted})

    async def _list_sessions(self, request: web.Request) -> web.Response:
        self._authorize(request)
        user = request.query.get("user", "")
        if not 0 < len(user) <= MAX_VALUE_CHARS:
            raise web.HTTPBadRequest(text=f"?user= must be 1 to {MAX_VALUE_CHARS} characters\n")
        index = self._sessions()
        if index is None:
            raise web.HTTPConflict(
                text="listing sessions needs session.store: redis (cookie sessions live only in "
                "browsers)\n"
            )
        revocations = self._revocations()
        sessions = await _reaching(index.of_user(user))
        await _reaching(revocations.sync())
        self._listings.inc()
        log_decision(_line({"event": "sessions", "action": "list", "user": user}, request))
        return web.json_response(
            {"sessions": [_listed(session, revocations) for session in sessions]}
        )

    def _authorize(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        presented = token.strip().encode()
        expected = [admin_token(secret).encode() for secret in self._secrets()]
        # Every candidate compared, so the time taken does not tell which secret matched.
        matched = [hmac.compare_digest(presented, candidate) for candidate in expected]
        if scheme.lower() != "bearer" or not any(matched):
            raise web.HTTPUnauthorized(
                text="admin token required\n", headers={"WWW-Authenticate": "Bearer"}
            )

    def _record(self, action: str, kind: RevocationKind, value: str, request: web.Request) -> None:
        self._actions.labels(action=action, kind=kind.value).inc()
        event = {"event": "revocation", "action": action, "kind": kind.value, "value": value}
        log_decision(_line(event, request))


def _line(event: dict[str, str], request: web.Request) -> str:
    """A decision-log line for an admin action: when, what, and from where."""
    return json.dumps({"ts": time.time(), **event, "client": request.remote}, separators=(",", ":"))


def _listed(session: IndexedSession, revocations: RevocationList) -> dict[str, Any]:
    revoked = revocations.view.covers_session(
        handle=session.handle,
        subject=session.subject,
        user=session.user,
        created_at=session.created_at,
    )
    return {**session.to_json(), "revoked": revoked}


async def _target(request: web.Request) -> tuple[RevocationKind, str]:
    """The `{"kind": "user"|"session", "value": ...}` a revoke or lift names; 400 otherwise."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, request.content_length)
    try:
        body = json.loads(await request.content.read(MAX_BODY_BYTES + 1))
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON object\n") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object\n")
    named = body.get("kind")
    kind = _OPERATOR_KINDS.get(named) if isinstance(named, str) else None
    value = body.get("value")
    if kind is None:
        raise web.HTTPBadRequest(text='"kind" must be "user" or "session"\n')
    if not isinstance(value, str) or not 0 < len(value) <= MAX_VALUE_CHARS:
        raise web.HTTPBadRequest(text=f'"value" must be 1 to {MAX_VALUE_CHARS} characters\n')
    if kind is RevocationKind.SESSION and not is_handle(value):
        raise web.HTTPBadRequest(
            text="a session is named by its handle (64 hex characters, from idgate sessions)\n"
        )
    return kind, value


async def _reaching(operation: Awaitable[_T]) -> _T:
    try:
        return await operation
    except (StoreUnavailable, OSError):
        raise web.HTTPServiceUnavailable(text="the revocation list cannot be reached\n") from None


def _entry(entry: Revocation) -> dict[str, Any]:
    return {
        "kind": entry.kind.value,
        "value": entry.value,
        "revoked_at": entry.revoked_at,
        "expires_at": entry.expires_at,
    }
