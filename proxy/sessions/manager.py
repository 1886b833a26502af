"""Sessions over time: created at sign-in, checked on every request, refreshed, ended.

Continuous verification: every `refresh_interval` the session's tokens are refreshed at the
provider and its groups re-read, so a user the provider revokes is out within one interval. A
refresh the provider refuses ends the session (fail closed); one it cannot answer (down, timed out)
is a 503 that keeps the session, to be refreshed at the next request. Within one process,
concurrent requests of one session share one refresh; across workers and replicas the store's
lock makes one of them refresh while the others keep the current record for a short grace period.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

import aiohttp

from proxy.config.model import BROWSER_ISSUER, SessionSettings, Settings
from proxy.errors import ProviderUnavailable, Unauthenticated
from proxy.identity.claims import principal_from_claims
from proxy.identity.principal import NO_SIGN_IN, CredentialSource, Principal, SignIn
from proxy.observability.metrics import Metrics
from proxy.oidc.flow import CodeFlow, FlowError, FlowFailure, TokenSet
from proxy.oidc.id_token import verify_id_token
from proxy.oidc.jwks import ProviderKeys
from proxy.reasons import Reason
from proxy.sessions.model import SessionRecord
from proxy.sessions.store import CookieChange, InvalidSession, SessionStore, StoreUnavailable

_log = logging.getLogger("idgate.session")

#: A session whose refresh another worker holds stays usable this long past its refresh time.
_REFRESH_GRACE_SECONDS: Final = 30.0
#: `last_seen_at` is written back at most this often (a cookie rewrite per request costs bytes).
_TOUCH_FRACTION: Final = 0.1


class _RefreshRefused(Exception):
    """The provider (or the clock) no longer vouches for this session."""


class SessionEnded(Unauthenticated):
    """The session cookie no longer opens a live session; the caller clears it (`forget`)."""

    reason = Reason.INVALID_SESSION


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionIdentity:
    principal: Principal
    record: SessionRecord
    cookies: list[CookieChange]
    """Cookie changes this request must send (a refreshed or touched session)."""


class SessionManager:
    def __init__(
        self,
        settings: Settings,
        *,
        store: SessionStore,
        provider: ProviderKeys,
        http: aiohttp.ClientSession,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._session: SessionSettings = settings.session
        self.store = store
        self._provider = provider
        self._http = http
        self._metrics = metrics
        self._clock = clock
        self._refreshing: dict[str, asyncio.Task[SessionRecord]] = {}
        self.redirect_uri = f"{settings.public_url.rstrip('/')}{settings.prefix}/callback"

    def flow(self) -> CodeFlow:
        metadata = self._provider.metadata
        if metadata is None:
            raise ProviderUnavailable("the provider's metadata is not loaded yet")
        return CodeFlow(self._settings.oidc, metadata, self._http)

    # -- every request -------------------------------------------------------------------------

    async def identify(self, cookies: Mapping[str, str]) -> SessionIdentity | None:
        """The live session these cookies carry, None when there is no session cookie.

        Raises SessionEnded (401; `forget` gives the cookie deletions) for a bad, expired, revoked
        or unrefreshable session, and ProviderUnavailable (the session kept) when the store, or
        the provider at a due refresh, cannot answer.
        """
        try:
            record = await self.store.load(cookies)
        except InvalidSession:
            raise SessionEnded("session is not valid") from None
        except StoreUnavailable as error:
            raise ProviderUnavailable("session store unavailable") from error
        if record is None:
            return None
        now = self._clock()
        ends_at = self._ends_at(record)
        if now >= ends_at:
            raise SessionEnded("session expired")
        changed = False
        if now - record.verified_at >= self._session.refresh_seconds:
            refreshed = await self._refresh_shared(record)
            if refreshed is None:
                raise SessionEnded("session could not be refreshed")
            changed = refreshed is not record
            record = refreshed
        if now - record.last_seen_at >= self._session.idle_timeout_seconds * _TOUCH_FRACTION:
            record, changed = record.seen(now), True
        saved = await self._save(record, cookies) if changed else []
        return SessionIdentity(
            principal=record.principal(expires_at=self._ends_at(record)),
            record=record,
            cookies=saved,
        )

    def _ends_at(self, record: SessionRecord) -> float:
        return min(
            record.created_at + self._session.lifetime_seconds,
            record.last_seen_at + self._session.idle_timeout_seconds,
        )

    # -- sign-in and sign-out ------------------------------------------------------------------

    async def create(
        self,
        claims: Mapping[str, Any],
        tokens: TokenSet,
        cookies: Mapping[str, str],
        *,
        sign_in: SignIn = NO_SIGN_IN,
    ) -> list[CookieChange]:
        """A new session (new id: SPEC "a new session id at every login") replacing any old one.

        `sign_in` comes from the verified ID token alone, never from userinfo or the URL: it is
        what a route's `step_up` is checked against."""
        now = self._clock()
        principal = principal_from_claims(
            claims,
            self._settings.oidc.claim_mapping,
            issuer=BROWSER_ISSUER,
            source=CredentialSource.SESSION,
            expires_at=now,
        )
        if principal is None:
            raise Unauthenticated("the provider did not name the user", reason=Reason.INVALID_TOKEN)
        record = SessionRecord(
            session_id=secrets.token_urlsafe(24),
            subject=str(claims["sub"]),
            provider_sid=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
            user=principal.user,
            email=principal.email,
            groups=principal.groups,
            claims=MappingProxyType(_policy_claims(claims)),
            id_token=tokens.id_token,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            created_at=now,
            last_seen_at=now,
            verified_at=now,
            sign_in=sign_in,
        )
        old = await self.forget(cookies) if cookies else []
        new = await self._save(record, cookies)
        fresh = {change.name for change in new}
        return [change for change in old if change.name not in fresh] + new

    async def end(
        self, cookies: Mapping[str, str]
    ) -> tuple[SessionRecord | None, list[CookieChange]]:
        """Sign-out: the record that was ended (for `id_token_hint`), and the cookie deletions."""
        try:
            record = await self.store.load(cookies)
        except (InvalidSession, StoreUnavailable):
            record = None
        return record, await self.forget(cookies)

    async def forget(self, cookies: Mapping[str, str]) -> list[CookieChange]:
        """End whatever session `cookies` name, in the store too; the cookie deletions."""
        try:
            return await self.store.clear(cookies)
        except StoreUnavailable:
            _log.warning("session store unavailable while clearing a session")
            return []

    async def _save(self, record: SessionRecord, cookies: Mapping[str, str]) -> list[CookieChange]:
        max_age = int(self._ends_at(record) - self._clock())
        try:
            return await self.store.save(record, cookies, max_age=max(max_age, 1))
        except StoreUnavailable as error:
            raise ProviderUnavailable("session store unavailable") from error

    # -- refresh -------------------------------------------------------------------------------

    async def _refresh_shared(self, record: SessionRecord) -> SessionRecord | None:
        """One refresh per session per process; concurrent requests await the same result."""
        task = self._refreshing.get(record.session_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh_locked(record))
            self._refreshing[record.session_id] = task
            task.add_done_callback(lambda _: self._refreshing.pop(record.session_id, None))
        try:
            return await asyncio.shield(task)
        except _RefreshRefused:
            return None

    async def _refresh_locked(self, record: SessionRecord) -> SessionRecord:
        async with self.store.refresh_lock(record.session_id) as held:
            if not held:
                # Another worker or replica refreshes this session right now.
                overdue = self._clock() - record.verified_at - self._session.refresh_seconds
                if overdue <= _REFRESH_GRACE_SECONDS:
                    return record
                raise _RefreshRefused("another worker's refresh of this session is overdue")
            return await self._refresh(record)

    async def _refresh(self, record: SessionRecord) -> SessionRecord:
        try:
            flow = self.flow()
            tokens = await self._renewed_tokens(flow, record)
            claims = dict(record.claims)
            if tokens.id_token is not None:
                claims |= await verify_id_token(
                    tokens.id_token,
                    oidc=self._settings.oidc,
                    keys=self._provider,
                    nonce=None,
                    subject=record.subject,
                )
            if tokens.access_token is not None:
                claims = await self.userinfo_claims(flow, tokens.access_token, claims)
        except (FlowError, Unauthenticated, ProviderUnavailable, _RefreshRefused) as error:
            self._metrics.session_refreshes.labels(result="failure").inc()
            if _provider_unreachable(error):
                # Not a refusal: fail closed (503) but keep the session, so an outage or a blip
                # at the provider does not sign out everybody whose refresh falls due.
                _log.warning("session refresh for user %s not possible now: %s", record.user, error)
                raise ProviderUnavailable("the provider cannot refresh the session now") from error
            _log.info("session refresh refused for user %s: %s", record.user, error)
            raise _RefreshRefused("session refresh failed") from error
        principal = principal_from_claims(
            claims,
            self._settings.oidc.claim_mapping,
            issuer=BROWSER_ISSUER,
            source=CredentialSource.SESSION,
            expires_at=0.0,
        )
        if principal is None:
            self._metrics.session_refreshes.labels(result="failure").inc()
            raise _RefreshRefused("refreshed claims do not name the user")
        self._metrics.session_refreshes.labels(result="success").inc()
        return replace(
            record,
            user=principal.user,
            email=principal.email,
            groups=principal.groups,
            claims=MappingProxyType(_policy_claims(claims)),
            id_token=tokens.id_token or record.id_token,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token or record.refresh_token,
            verified_at=self._clock(),
        )

    async def _renewed_tokens(self, flow: CodeFlow, record: SessionRecord) -> TokenSet:
        """New tokens from the refresh token. A provider that issued none (no `offline_access`
        granted) is asked at userinfo whether the access token still stands: the session lasts
        while it does, and ends when the provider refuses it (revoked, or simply expired)."""
        if record.refresh_token is not None:
            return await flow.refresh(record.refresh_token)
        if record.access_token is None:
            raise _RefreshRefused("the session has neither a refresh nor an access token")
        return TokenSet(
            access_token=record.access_token, refresh_token=None, id_token=None, expires_at=None
        )

    async def userinfo_claims(
        self, flow: CodeFlow, access_token: str, claims: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`claims` completed from the userinfo endpoint (groups often live only there)."""
        extra = await flow.userinfo(access_token)
        # OIDC Core 5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly
        # match the sub Claim in the ID Token; if they do not match, the UserInfo Response values
        # MUST NOT be used."
        if extra.get("sub") != claims.get("sub"):
            raise FlowError(FlowFailure.INVALID_RESPONSE, "userinfo names another subject")
        return {**claims, **extra}


def _provider_unreachable(error: Exception) -> bool:
    """The provider did not answer (down, timed out, 5xx, keys not loaded): it refused nothing."""
    if isinstance(error, FlowError):
        return error.error is FlowFailure.PROVIDER_UNAVAILABLE
    return isinstance(error, ProviderUnavailable)


#: Claims that are about the token, not the user: never copied into a session's policy claims.
_TOKEN_CLAIMS: Final = frozenset(
    {"iss", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "azp", "jti", "auth_time"}
)


def _policy_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in claims.items() if name not in _TOKEN_CLAIMS}
