"""`/oauth2/start` and `/oauth2/sign_in`: send the browser to the provider.

The return URL comes from `rd` or nginx's `X-Auth-Request-Redirect`, vetted here and again at the
callback; a target that fails vetting becomes `/`, never an error an attacker could probe with.
The route that URL names decides whether the sign-in asks for `max_age` and `acr_values` (its
`step_up`): no URL parameter chooses them, so the same request works from idgate's own redirect
and from a gateway's `/oauth2/sign_in` after a forward-auth 401.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from proxy.config.model import StepUp
from proxy.endpoints.redirects import vet_redirect
from proxy.errors import BadRequest
from proxy.stages.context import RequestContext
from proxy.stages.limits import SIGN_IN, enforce
from proxy.stages.pages import NO_STORE
from proxy.stages.paths import normalize_path


async def start(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    runtime = ctx.runtime
    enforce(ctx, runtime.rate_limits.sign_in, SIGN_IN)
    settings = runtime.settings
    wanted = request.query.get("rd") or request.headers.get("X-Auth-Request-Redirect") or "/"
    target = vet_redirect(
        wanted, public_url=settings.public_url, allowed_domains=settings.allowed_redirect_domains
    )
    step_up = route_step_up(ctx, target or "/")
    flow = runtime.sessions.flow()
    authorization = flow.authorization_request(
        redirect_uri=runtime.sessions.redirect_uri,
        max_age=None if step_up is None else step_up.max_age_seconds,
        acr_values=() if step_up is None else step_up.acr_values,
    )
    cookie = runtime.login_states.begin(
        state=authorization.state,
        nonce=authorization.nonce,
        code_verifier=authorization.code_verifier,
        redirect_to=target or "/",
        step_up=step_up,
    )
    response = web.Response(status=302, headers={"Location": authorization.url})
    response.headers["Cache-Control"] = NO_STORE
    ctx.set_cookies.append(cookie)
    return response


def route_step_up(ctx: RequestContext, target: str) -> StepUp | None:
    """The `step_up` of the route a browser returning to `target` (a GET) would match."""
    url = urlsplit(target)
    try:
        path = normalize_path(url.path or "/").decoded
    except BadRequest:
        return None
    route = ctx.runtime.routes.match(host=url.hostname or ctx.host, path=path, method="GET")
    return None if route is None else route.step_up
