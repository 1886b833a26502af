"""`/oauth2/start` and `/oauth2/sign_in`: send the browser to the provider.

The return URL comes from `rd` or nginx's `X-Auth-Request-Redirect`, vetted here and again at the
callback; a target that fails vetting becomes `/`, never an error an attacker could probe with.
"""

from __future__ import annotations

from aiohttp import web

from proxy.endpoints.redirects import vet_redirect
from proxy.stages.context import RequestContext
from proxy.stages.limits import SIGN_IN, enforce
from proxy.stages.pages import NO_STORE


async def start(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    runtime = ctx.runtime
    enforce(ctx, runtime.rate_limits.sign_in, SIGN_IN)
    settings = runtime.settings
    wanted = request.query.get("rd") or request.headers.get("X-Auth-Request-Redirect") or "/"
    target = vet_redirect(
        wanted, public_url=settings.public_url, allowed_domains=settings.allowed_redirect_domains
    )
    flow = runtime.sessions.flow()
    authorization = flow.authorization_request(redirect_uri=runtime.sessions.redirect_uri)
    cookie = runtime.login_states.begin(
        state=authorization.state,
        nonce=authorization.nonce,
        code_verifier=authorization.code_verifier,
        redirect_to=target or "/",
    )
    response = web.Response(status=302, headers={"Location": authorization.url})
    response.headers["Cache-Control"] = NO_STORE
    ctx.set_cookies.append(cookie)
    return response
