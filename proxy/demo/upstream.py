"""The demo upstream: answers any path with what idgate sent it, as a page or as JSON.

It shows the request line, the identity headers and `X-Forwarded-*`, and checks the signed
assertion the way any upstream should rather than trusting the network: the signature against
idgate's published keys (`/oauth2/jwks`, fetched with aiohttp and cached), `iss` equal to idgate's
public URL and `aud` equal to the route this service stands behind. The raw assertion is never
echoed: it is a credential for this service, so only its decoded header and claims are shown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any, Final

import aiohttp
from aiohttp import web
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, InvalidPayloadError, JoseError
from joserfc.jwk import Key, KeySet

from proxy.demo.pages import chips, page

ASSERTION_HEADER: Final = "X-Authenticated-Assertion"
IDENTITY_HEADERS: Final = (
    "X-Authenticated-User",
    "X-Authenticated-Email",
    "X-Authenticated-Groups",
)
FORWARDED_HEADERS: Final = ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded")
#: idgate signs assertions with ES256 only (proxy/identity/assertion.py); nothing else is accepted.
_REGISTRY: Final = jws.JWSRegistry(algorithms=["ES256"])


class KeysUnavailable(Exception):
    """idgate's JWKS could not be fetched or held no usable key."""


class AssertionKeys:
    """idgate's assertion keys: fetched on first use, and again for a kid not seen yet, at most
    once per `min_refresh_seconds` (so forged kids cannot make this service hammer idgate)."""

    def __init__(
        self,
        jwks_url: str,
        http: aiohttp.ClientSession,
        *,
        min_refresh_seconds: float = 5.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._url = jwks_url
        self._http = http
        self._min_refresh = min_refresh_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._keys: dict[str | None, Key] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> Key:
        """The key with this kid; KeysUnavailable when idgate publishes none such."""
        key = self._keys.get(kid)
        if key is None:
            async with self._lock:
                key = self._keys.get(kid)
                last = self._fetched_at
                if key is None and (last is None or time.monotonic() - last >= self._min_refresh):
                    await self._fetch()
                    key = self._keys.get(kid)
        if key is None:
            raise KeysUnavailable(f"idgate publishes no key with kid {kid!r}")
        return key

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            async with self._http.get(self._url, timeout=self._timeout) as response:
                response.raise_for_status()
                document = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise KeysUnavailable(f"idgate's keys could not be fetched: {error}") from error
        try:
            key_set = KeySet.import_key_set(document)
        # joserfc reports most bad keys as JoseError; a document of another shape surfaces as
        # TypeError or KeyError, a bad member as ValueError.
        except (JoseError, TypeError, KeyError, ValueError) as error:
            raise KeysUnavailable(f"idgate's keys are not a usable JWK set: {error}") from error
        self._keys = {key.kid: key for key in key_set.keys}


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    present: bool
    verified: bool
    result: str
    """"verified ✓", or what failed."""
    header: Mapping[str, Any] | None = None
    claims: Mapping[str, Any] | None = None
    """Decoded whatever the outcome, so a tampered assertion can be looked at."""

    def as_json(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "verified": self.verified,
            "result": self.result,
            "header": self.header,
            "claims": self.claims,
        }


async def verify_assertion(
    token: str | None, *, keys: AssertionKeys, issuer: str, audience: str
) -> Verification:
    if token is None:
        return Verification(present=False, verified=False, result="no assertion")
    try:
        header, claims = _unverified(token)
    except (JoseError, ValueError, RecursionError) as error:
        return Verification(present=True, verified=False, result=_not_verified(error))
    shown = {"header": header, "claims": claims}
    kid = header.get("kid")
    expected = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        key = await keys.key_for(kid if isinstance(kid, str) else None)
        expected.validate(jwt.decode(token, key, registry=_REGISTRY).claims)
    except (JoseError, KeysUnavailable) as error:
        return Verification(present=True, verified=False, result=_not_verified(error), **shown)
    return Verification(present=True, verified=True, result="verified ✓", **shown)


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims as sent, to show them whatever the verdict."""
    signed = jws.extract_compact(token.encode("ascii"), registry=_REGISTRY)
    claims = json.loads(signed.payload)
    if not isinstance(claims, dict):
        raise InvalidPayloadError("the payload is not a JSON object")
    return signed.headers(), claims


def _not_verified(error: Exception) -> str:
    if isinstance(error, BadSignatureError):
        reason = "the signature does not match idgate's key"
    elif isinstance(error, JoseError):
        reason = error.description or error.error
    else:
        reason = str(error)
    return f"not verified ✗: {reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    path: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSettings:
    audience: str
    """The route this service stands behind: the `aud` its assertions must name."""
    issuer: str
    """idgate's public URL: the `iss` of its assertions."""
    links: tuple[Link, ...] = ()
    """The demo's tour, shown on every page."""


def upstream_app(settings: UpstreamSettings, keys: AssertionKeys) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        verification = await verify_assertion(
            request.headers.get(ASSERTION_HEADER),
            keys=keys,
            issuer=settings.issuer,
            audience=settings.audience,
        )
        seen = _seen(request, settings, verification)
        if "text/html" in request.headers.get("Accept", ""):
            return _echo_page(seen, verification, settings)
        return web.json_response(seen, dumps=_pretty)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _seen(
    request: web.Request, settings: UpstreamSettings, verification: Verification
) -> dict[str, Any]:
    identity = {name: request.headers[name] for name in IDENTITY_HEADERS if name in request.headers}
    assertion = request.headers.get(ASSERTION_HEADER)
    if assertion is not None:
        identity[ASSERTION_HEADER] = f"<signed JWT, {len(assertion)} characters, decoded below>"
    return {
        "route": settings.audience,
        "method": request.method,
        "path": request.raw_path,
        "identity": identity,
        "forwarded": {
            name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers
        },
        "assertion": verification.as_json(),
        "header_names": sorted({name.lower() for name in request.headers}),
    }


def _rows(values: Mapping[str, str]) -> str:
    if not values:
        return '<p class="muted">none</p>'
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td><code>{escape(value)}</code></td></tr>"
        for name, value in values.items()
    )
    return f"<table>{rows}</table>"


def _echo_page(
    seen: dict[str, Any], verification: Verification, settings: UpstreamSettings
) -> web.Response:
    user = seen["identity"].get("X-Authenticated-User")
    heading = f"Hello, {user}" if user else "No identity: a public route"
    groups = [g for g in seen["identity"].get("X-Authenticated-Groups", "").split(",") if g]
    nav = " ".join(
        f'<a href="{escape(link.path)}">{escape(link.label)}</a>' for link in settings.links
    )
    if verification.present:
        css = "ok" if verification.verified else "bad"
        assertion = (
            f'<p class="{css}">{escape(verification.result)}</p>'
            f'<p class="muted">Signature checked against idgate\'s <code>/oauth2/jwks</code>, '
            f"<code>iss</code> = <code>{escape(settings.issuer)}</code>, "
            f"<code>aud</code> = <code>{escape(settings.audience)}</code>.</p>"
            f"<pre>{escape(_pretty(verification.claims))}</pre>"
            f"<pre>{escape(_pretty(verification.header))}</pre>"
        )
    else:
        assertion = '<p class="muted">No assertion: idgate sends one only with an identity.</p>'
    body = (
        f"<h1>{escape(heading)}</h1>"
        f"<p>{chips(groups) if user else ''}</p>"
        f'<p class="muted">This page is the demo upstream behind route '
        f"<code>{escape(settings.audience)}</code>: it shows exactly what idgate sent it.</p>"
        f"<nav>{nav}</nav>"
        f"<h2>Signed identity assertion</h2>{assertion}"
        f"<h2>Identity headers</h2>{_rows(seen['identity'])}"
        f"<h2>Forwarded headers</h2>{_rows(seen['forwarded'])}"
        f"<h2>Request</h2>{_rows({'method': seen['method'], 'path': seen['path']})}"
        f'<h2>Every header name received</h2><p class="muted">'
        f"{escape(', '.join(seen['header_names']))}</p>"
    )
    return page(
        status=200,
        title=f"{settings.audience} · idgate demo upstream",
        body_html=body,
        banner=f"Demo upstream behind route {settings.audience}: it shows what idgate sent it.",
        banner_color="#cfe3ff",
    )
