"""Every cookie idgate sets, written with one set of attributes.

SPEC: "Cookies: HttpOnly, Secure when public_url is https, SameSite=Lax". With https and no
`cookie_domain`, the session cookie takes the `__Host-` prefix (RFC 6265bis 4.1.3.2), which
browsers only accept with Secure, Path=/ and no Domain: no subdomain and no plain-http page can
plant or overwrite it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from proxy.config.model import Settings
from proxy.sessions.store import CookieChange


@dataclass(frozen=True, slots=True, kw_only=True)
class CookieJar:
    """The attributes idgate's cookies share, derived once from the settings."""

    session_name: str
    """Effective session cookie name (with `__Host-` when it applies); chunks add `_0`, `_1`…"""
    state_prefix: str
    """Login-state cookies are `{state_prefix}{tag}`; scoped to the callback path."""
    secure: bool
    domain: str | None
    callback_path: str

    @classmethod
    def from_settings(cls, settings: Settings) -> CookieJar:
        secure = urlsplit(settings.public_url).scheme == "https"
        domain = settings.session.cookie_domain
        base = settings.session.cookie_name
        host_prefix = "__Host-" if secure and domain is None else ""
        # A cookie scoped to one path cannot be __Host- (which demands Path=/); __Secure- still
        # keeps plain-http pages from setting it.
        secure_prefix = "__Secure-" if secure else ""
        return cls(
            session_name=f"{host_prefix}{base}",
            state_prefix=f"{secure_prefix}{base}_state_",
            secure=secure,
            domain=domain,
            callback_path=f"{settings.prefix}/callback",
        )

    def apply(self, response: web.StreamResponse, changes: Iterable[CookieChange]) -> None:
        """Session cookies: Path=/ and the configured domain (unless `__Host-` forbids one).
        Login-state cookies: host-only, sent back to the callback and nowhere else."""
        session_domain = None if self.session_name.startswith("__Host-") else self.domain
        for change in changes:
            if change.name.startswith(self.state_prefix):
                self._set(response, change, path=self.callback_path, domain=None)
            else:
                self._set(response, change, path="/", domain=session_domain)

    def _set(
        self, response: web.StreamResponse, change: CookieChange, *, path: str, domain: str | None
    ) -> None:
        if change.value is None:
            response.del_cookie(
                change.name,
                path=path,
                domain=domain,
                secure=self.secure,
                httponly=True,
                samesite="Lax",
            )
            return
        response.set_cookie(
            change.name,
            change.value,
            max_age=change.max_age,
            path=path,
            domain=domain,
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )
