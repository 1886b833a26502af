"""`/healthz`, `/readyz`, `/robots.txt`, `{prefix}/jwks` and `{prefix}/userinfo`."""

from __future__ import annotations

from aiohttp import web

from proxy.drain import DRAIN_KEY
from proxy.errors import Unauthenticated
from proxy.identity.principal import CredentialSource
from proxy.stages.context import RequestContext
from proxy.stages.identify import identify
from proxy.stages.pages import NO_STORE, userinfo_page
from proxy.stages.responses import json_response, wants_html


async def healthz(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Liveness: the process serves requests. Says nothing about the provider on purpose, so an
    orchestrator does not restart every replica when the provider has an outage."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Readiness: configuration loaded, the provider's metadata and keys fetched, and the session
    store answering; from SIGTERM on, never, so load balancers stop sending new requests while
    the ones in flight finish. `issuers` says which issuers have keys loaded; only the `oidc`
    one decides readiness (another issuer's outage fails its own tokens only)."""
    if request.app[DRAIN_KEY].draining:
        return json_response({"ready": False, "draining": True}, status=503)
    ready = await ctx.runtime.ready()
    issuers = ctx.runtime.issuers.readiness()
    return json_response({"ready": ready, "issuers": issuers}, status=200 if ready else 503)


async def jwks(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Public keys that verify `X-Authenticated-Assertion`."""
    return json_response(ctx.runtime.signer.jwks())


async def robots(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """Crawlers are asked to index nothing behind idgate (dispatch leaves `/robots.txt` to a
    public route that serves one: `answers_robots`)."""
    response = web.Response(text="User-agent: *\nDisallow: /\n", content_type="text/plain")
    response.headers["Cache-Control"] = NO_STORE
    return response


async def userinfo(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    """The caller's identity as idgate sees it: claims-derived fields only, never a token. A
    browser (`text/html` in Accept) gets it as a "who am I" page; anything else as JSON."""
    principal = await identify(request, ctx)
    if principal is None:
        raise Unauthenticated("sign in required")
    if wants_html(request):
        settings = ctx.runtime.settings
        # Sessions and bearer tokens are verified against oidc.issuer; certificates have none.
        from_provider = principal.source is not CredentialSource.CLIENT_CERT
        return userinfo_page(
            user=principal.user,
            email=principal.email,
            groups=principal.groups,
            issuer=settings.oidc.issuer if from_provider else None,
            source=principal.source.value,
            expires_at=principal.expires_at,
            sign_out_url=f"{settings.public_url.rstrip('/')}{settings.prefix}/sign_out",
            request_id=ctx.request_id,
        )
    return json_response(
        {
            "user": principal.user,
            "email": principal.email,
            "groups": sorted(principal.groups),
            "source": principal.source.value,
            "issuer": principal.issuer,
        }
    )
