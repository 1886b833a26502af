"""Every cookie idgate sets, written with one set of attributes.

SPEC: "Cookies: HttpOnly, Secure when public_url is https, SameSite=Lax". With https and no
`cookie_domain`, the session cookie takes the `__Host-` prefix (RFC 6265bis 4.1.3.2), which
browsers only accept with Secure, Path=/ and no Domain: no subdomain and no plain-http page can
plant or overwrite it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http.cookies import Morsel
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from proxy.config.model import Settings
from proxy.sessions.store import CookieChange

_EXPIRED: Final = "Thu, 01 Jan 1970 00:00:00 GMT"


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
        # Written as a header rather than through response.set_cookie(): aiohttp serialises its
        # cookie jar before on_response_prepare, where session changes are applied.
        morsel: Morsel[str] = Morsel()
        morsel.set(change.name, change.value or "", change.value or "")
        morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if change.value is None:
            morsel["max-age"] = 0
            morsel["expires"] = _EXPIRED
        elif change.max_age is not None:
            morsel["max-age"] = change.max_age
        morsel["secure"] = self.secure
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        response.headers.add("Set-Cookie", morsel.OutputString())
