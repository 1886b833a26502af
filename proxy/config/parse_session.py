"""The `session` section: where sessions live, the keys that seal them, how long they last."""

from __future__ import annotations

from proxy.config.addresses import hostname
from proxy.config.model import SessionSettings, SessionStoreKind
from proxy.config.parse_redis import parse_redis
from proxy.config.reader import Section, given
from proxy.config.values import choice, cookie_name, duration, session_secret, whole_seconds


def parse_session(section: Section, *, public_host: str | None) -> SessionSettings:
    """`public_host` (from `public_url`, None if that was invalid) bounds `cookie_domain`."""
    secrets = section.get_list("secret", session_secret, single=True, required=True)
    cookie_domain = section.get("cookie_domain", _cookie_domain)
    session = SessionSettings(
        secrets=secrets or (),
        **given(
            store=section.get("store", choice(SessionStoreKind)),
            redis=parse_redis(section),
            lifetime_seconds=section.get("lifetime", whole_seconds),
            idle_timeout_seconds=section.get("idle_timeout", whole_seconds),
            refresh_seconds=section.get("refresh_interval", duration),
            cookie_name=section.get("cookie_name", cookie_name),
            cookie_domain=cookie_domain,
        ),
    )
    section.close()
    written = [key for key in ("redis_url", "redis") if section.peek(key) is not None]
    if session.store is SessionStoreKind.REDIS and not written:
        section.issue("required when store is redis (or redis_url)", key="redis")
    # With store: cookie, Redis (when written) holds only the revocation list the replicas
    # share (proxy/sessions/revocation_list.py).
    # RFC 6265 5.3 step 6: "If the canonicalized request-host does not domain-match the
    # domain-attribute: Ignore the cookie entirely", so such a session cookie would never be set.
    if (
        cookie_domain is not None
        and public_host is not None
        and not _domain_matches(public_host, cookie_domain)
    ):
        section.issue("must be public_url's host or a parent domain of it", key="cookie_domain")
    return session


def _cookie_domain(value: object) -> str:
    # RFC 6265 5.2.3: a leading dot is ignored.
    return hostname(value.removeprefix(".") if isinstance(value, str) else value)


def _domain_matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)
