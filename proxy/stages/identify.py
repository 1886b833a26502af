"""Identify: the request's credentials, in order, become a Principal, or None when there are none.

Identifiers return None for "no credentials of my kind" and raise for "credentials of my kind
that do not verify": a bad bearer token is never rescued by a valid session cookie.
Bearer tokens come first (services and scripts), then a client certificate, then the browser's
session cookie.
"""

from __future__ import annotations

import ssl
import time

from aiohttp import web

from proxy.identity.bearer import bearer_token, check_accepted
from proxy.identity.client_cert import der_principal, forwarded_principal
from proxy.identity.principal import Principal
from proxy.sessions.manager import SessionEnded
from proxy.stages.context import RequestContext


async def identify(request: web.Request, ctx: RequestContext) -> Principal | None:
    """The caller, also written to `ctx.principal`; raises Unauthenticated (or a subclass) for
    credentials that do not verify, ProviderUnavailable when they cannot be checked now."""
    accepted = None if ctx.route is None else ctx.route.issuers
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None:
        principal: Principal | None = await ctx.runtime.verifier.verify(token, accepted=accepted)
    else:
        principal = client_certificate(request, ctx)
        if principal is None:
            principal = await _session(request, ctx)
            # A session is the `oidc` issuer's: a route that does not list it refuses it too.
            check_accepted(None if principal is None else principal.issuer, accepted)
    ctx.principal = principal
    return principal


def client_certificate(request: web.Request, ctx: RequestContext) -> Principal | None:
    """The identity in the client certificate: from a trusted proxy's header when
    `client_certificates` is configured and the peer is one (the peer's own certificate then
    names the proxy, not the client), else the certificate idgate's TLS listener verified."""
    now = time.time()
    forwarded = ctx.runtime.settings.client_certificates
    if forwarded is not None and ctx.from_trusted_proxy:
        values = request.headers.getall(forwarded.forwarded_header, [])
        return forwarded_principal(values, forwarded.forwarded_format, now=now)
    transport = request.transport
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    # Set only when the client presented a certificate and the handshake verified it against
    # tls.client_ca_file (CERT_OPTIONAL fails the handshake for any other certificate).
    der = ssl_object.getpeercert(binary_form=True)
    return None if der is None else der_principal(der, now=now)


async def _session(request: web.Request, ctx: RequestContext) -> Principal | None:
    sessions = ctx.runtime.sessions
    try:
        session = await sessions.identify(request.cookies)
    except SessionEnded:
        # The cookie opens no live session any more: the answer clears it (and its record).
        ctx.set_cookies.extend(await sessions.forget(request.cookies))
        raise
    if session is None:
        return None
    ctx.set_cookies.extend(session.cookies)
    ctx.verify_again_at = session.record.verified_at + ctx.runtime.settings.session.refresh_seconds
    ctx.session_access_token = session.record.access_token
    return session.principal
