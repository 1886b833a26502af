"""The runtime bundle: everything built from one Settings, swapped whole on reload.

A request takes `holder.current` once (proxy/server/app.py) and carries that bundle in its
RequestContext to the end, so a reload never mixes two configurations inside one request; only a
WebSocket tunnel's periodic re-check asks for the current one again, on purpose. An issuer's keys
are kept across a reload that did not change its settings (the `oidc` section for the provider's):
a reload must not drop working keys while an issuer is unreachable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import ClientSession, web

from proxy.config.model import IssuerSettings, SessionStoreKind, Settings
from proxy.identity.assertion import AssertionSigner
from proxy.identity.bearer import BearerVerifier
from proxy.identity.issuers import Issuer, IssuerKeys, IssuerRegistry
from proxy.identity.token_kind import refuse_id_tokens
from proxy.observability.metrics import Metrics
from proxy.observability.tracing import Tracing
from proxy.oidc.introspection import IntrospectionClient
from proxy.oidc.jwks import ProviderKeys
from proxy.oidc.kubernetes_keys import KubernetesKeys
from proxy.oidc.logout_token import LogoutTokenVerifier
from proxy.oidc.token_review import token_reviews
from proxy.policy.rate_limits import RateLimits
from proxy.policy.routes import RouteTable
from proxy.policy.trust import TrustedProxies
from proxy.sessions.cookie_store import CookieStore
from proxy.sessions.cookies import CookieJar
from proxy.sessions.login_state import LoginStates
from proxy.sessions.manager import SessionManager
from proxy.sessions.revocation_list import RevocationList, start_revocation_list
from proxy.sessions.store import SessionStore, StoreUnavailable


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    settings: Settings
    metrics: Metrics
    """The process's metrics: one object for every runtime, so counters survive a reload."""
    routes: RouteTable
    trusted_proxies: TrustedProxies
    rate_limits: RateLimits
    provider: ProviderKeys
    """The `oidc` block's provider: sign-in, sessions, logout tokens, and the `oidc` issuer."""
    issuers: IssuerRegistry
    verifier: BearerVerifier
    signer: AssertionSigner
    cookies: CookieJar
    sessions: SessionManager
    login_states: LoginStates
    logout_tokens: LogoutTokenVerifier
    revocations: RevocationList
    """Revoked sessions and users, shared with the host's workers or (Redis) every replica; the
    session store owns it and closes it."""
    tracing: Tracing | None = None
    """Spans for each request, when `tracing` is configured; kept across a reload that leaves
    it unchanged."""

    async def ready(self) -> bool:
        """Provider metadata and keys loaded, and the session store answering. The other
        issuers' keys are reported (`issuers.readiness()`) but do not decide: an issuer that
        cannot be reached fails its own tokens only, on every replica alike."""
        if not self.provider.ready:
            return False
        try:
            await self.sessions.store.ping()
        except StoreUnavailable:
            return False
        return True


class RuntimeHolder:
    """The one mutable cell: which Runtime serves new requests."""

    __slots__ = ("current",)

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime


RUNTIME_KEY = web.AppKey[RuntimeHolder]("runtime")


async def build_runtime(
    settings: Settings,
    *,
    http: ClientSession,
    metrics: Metrics,
    previous: Runtime | None = None,
) -> Runtime:
    """A started Runtime; reuses `previous`'s provider keys when `oidc` is unchanged (and any
    other issuer's when its settings are), its session store (with what it remembers) when the
    session settings and cookies are (else a new store whose revocation list holds what the old
    one held in force), and its rate-limit counts when `rate_limits` is."""
    if previous is not None and previous.settings.oidc == settings.oidc:
        provider = previous.provider
    else:
        provider = ProviderKeys(settings.oidc.as_issuer, http, metrics)
        await provider.start()
    issuers = await build_issuers(settings, provider, http=http, metrics=metrics, previous=previous)
    cookies = CookieJar.from_settings(settings)
    if (
        previous is not None
        and previous.settings.session == settings.session
        and previous.cookies == cookies
    ):
        store, revocations = previous.sessions.store, previous.revocations
    else:
        revocations = await start_revocation_list(
            settings, None if previous is None else previous.revocations
        )
        store = build_store(settings, cookies, revocations)
    if previous is not None and previous.settings.tracing == settings.tracing:
        tracing = previous.tracing
    else:
        tracing = None if settings.tracing is None else Tracing(settings.tracing)
    return Runtime(
        settings=settings,
        metrics=metrics,
        routes=RouteTable(settings.routes),
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
        rate_limits=(
            previous.rate_limits
            if previous is not None and previous.settings.rate_limits == settings.rate_limits
            else RateLimits(settings.rate_limits)
        ),
        provider=provider,
        issuers=issuers,
        verifier=BearerVerifier(issuers, metrics, revocations=revocations),
        signer=AssertionSigner(settings.session.secrets, issuer=settings.public_url),
        cookies=cookies,
        sessions=SessionManager(
            settings, store=store, provider=provider, http=http, metrics=metrics
        ),
        login_states=LoginStates(settings.session.secrets, cookie_prefix=cookies.state_prefix),
        logout_tokens=LogoutTokenVerifier(settings.oidc, provider),
        revocations=revocations,
        tracing=tracing,
    )


async def build_issuers(
    settings: Settings,
    provider: ProviderKeys,
    *,
    http: ClientSession,
    metrics: Metrics,
    previous: Runtime | None,
) -> IssuerRegistry:
    """Every issuer with its keys: the `oidc` block's on `provider`, the others on their own,
    taken over from `previous` when their settings are unchanged, else started here (at once:
    one slow issuer does not hold up the others' first load)."""
    kept = {} if previous is None else previous.issuers.issuers
    named: list[Issuer] = []
    started: list[IssuerKeys] = []
    for issuer_settings in settings.issuers:
        old = kept.get(issuer_settings.name)
        if old is not None and old.settings == issuer_settings:
            keys, confirmation = old.keys, old.confirmation
        else:
            keys = issuer_keys(issuer_settings, http, metrics)
            confirmation = token_reviews(issuer_settings, http)
            started.append(keys)
        named.append(
            Issuer(
                issuer_settings,
                keys,
                refuse_id_tokens=refuse_id_tokens(None),
                introspector=introspector(issuer_settings, keys, http, metrics),
                confirmation=confirmation,
            )
        )
    await asyncio.gather(*(keys.start() for keys in started))
    browser = Issuer(
        settings.oidc.as_issuer, provider, refuse_id_tokens=refuse_id_tokens(settings.oidc)
    )
    return IssuerRegistry((browser, *named))


def issuer_keys(settings: IssuerSettings, http: ClientSession, metrics: Metrics) -> IssuerKeys:
    """The key source an issuer's kind fetches its keys with (not yet started)."""
    if settings.kubernetes is not None:
        return KubernetesKeys(settings, http, metrics)
    return ProviderKeys(settings, http, metrics)


def introspector(
    settings: IssuerSettings, keys: IssuerKeys, http: ClientSession, metrics: Metrics
) -> IntrospectionClient | None:
    """The client of the issuer's introspection endpoint, over its `ca_file`; None without one
    (the config allows `introspection` on `oidc` issuers only, whose keys are ProviderKeys)."""
    if settings.introspection is None or not isinstance(keys, ProviderKeys):
        return None
    return IntrospectionClient(
        http,
        settings.introspection,
        metrics,
        issuer=settings.name,
        discovered=lambda: keys.metadata,
        timeout=settings.http_timeout_seconds,
        ssl=keys.ssl,
    )


def build_store(
    settings: Settings, cookies: CookieJar, revocations: RevocationList | None = None
) -> SessionStore:
    session = settings.session
    if session.store is SessionStoreKind.REDIS:
        assert session.redis is not None  # the config loader requires it with store: redis
        # redis-py only when the config names a Redis (proxy/sessions/redis_client.py says why).
        from proxy.sessions.redis_store import RedisStore  # noqa: PLC0415

        return RedisStore(session.redis, cookie_name=cookies.session_name, revocations=revocations)
    return CookieStore(
        session.secrets,
        cookie_name=cookies.session_name,
        max_lifetime_seconds=session.lifetime_seconds,
        revocations=revocations,
    )


async def retire_runtime(old: Runtime, new: Runtime | None) -> None:
    """Release what `old` holds that `new` did not take over."""
    if new is None or new.provider is not old.provider:
        await old.provider.close()
    taken = set() if new is None else {id(issuer.keys) for issuer in new.issuers.issuers.values()}
    for issuer in old.issuers.issuers.values():
        if issuer.keys is not old.provider and id(issuer.keys) not in taken:
            await issuer.keys.close()
    if new is None or new.sessions.store is not old.sessions.store:
        await old.sessions.store.close()
    if old.tracing is not None and (new is None or new.tracing is not old.tracing):
        # Exports the spans still queued: blocking, and bounded by the exporter's timeout.
        await asyncio.to_thread(old.tracing.shutdown)
