"""`/oauth2/callback`: finish the code flow, start a session, return to where the user was.

Every failure here ends in the same place: a page that offers to sign in again, the state cookie
cleared, the reason counted in `idgate_logins_total{result=...}`; no provider text is echoed.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from proxy.endpoints.redirects import vet_redirect
from proxy.errors import BadRequest, InvalidToken, ProviderUnavailable, SignInFailed
from proxy.oidc.flow import FlowError, FlowFailure, TokenSet
from proxy.oidc.id_token import verify_id_token
from proxy.runtime import Runtime
from proxy.sessions.login_state import InvalidLoginState
from proxy.stages.context import RequestContext
from proxy.stages.limits import CALLBACK, enforce
from proxy.stages.pages import NO_STORE

_log = logging.getLogger("idgate.login")


async def callback(request: web.Request, ctx: RequestContext) -> web.StreamResponse:
    runtime = ctx.runtime
    enforce(ctx, runtime.rate_limits.callback, CALLBACK)
    metrics = runtime.metrics
    query = request.query
    state = query.get("state")
    if not state:
        raise BadRequest("the callback needs a state")
    try:
        login, forget_state = runtime.login_states.finish(state, request.cookies)
    except InvalidLoginState as error:
        metrics.logins.labels(result="invalid_state").inc()
        ctx.set_cookies.append(runtime.login_states.deletion(state))
        raise SignInFailed(str(error)) from None
    ctx.set_cookies.append(forget_state)
    if "error" in query or not query.get("code"):
        # The provider's error_description is attacker-influenced text: counted, not shown.
        metrics.logins.labels(result="provider_error").inc()
        raise SignInFailed("the identity provider did not complete the sign-in")

    try:
        tokens, claims = await _complete(
            runtime, code=query["code"], nonce=login.nonce, code_verifier=login.code_verifier
        )
    except (FlowError, InvalidToken) as error:
        metrics.logins.labels(result="failure").inc()
        _log.warning("sign-in failed: %s", error)
        raise SignInFailed("the sign-in could not be completed") from None
    except ProviderUnavailable:
        metrics.logins.labels(result="failure").inc()
        raise

    ctx.set_cookies.extend(await runtime.sessions.create(claims, tokens, request.cookies))
    metrics.logins.labels(result="success").inc()
    settings = runtime.settings
    target = vet_redirect(
        login.redirect_to,
        public_url=settings.public_url,
        allowed_domains=settings.allowed_redirect_domains,
    )
    response = web.Response(status=302, headers={"Location": target or "/"})
    response.headers["Cache-Control"] = NO_STORE
    return response


async def _complete(
    runtime: Runtime, *, code: str, nonce: str, code_verifier: str
) -> tuple[TokenSet, dict[str, Any]]:
    """Exchange the code, verify the ID token, and complete the claims from userinfo when the
    ID token lacks the groups claim (many providers keep groups out of ID tokens)."""
    sessions = runtime.sessions
    flow = sessions.flow()
    tokens = await flow.exchange(
        code, code_verifier=code_verifier, redirect_uri=sessions.redirect_uri
    )
    if tokens.id_token is None:
        raise FlowError(FlowFailure.INVALID_RESPONSE, "the provider sent no ID token")
    claims = await verify_id_token(
        tokens.id_token, oidc=runtime.settings.oidc, keys=runtime.provider, nonce=nonce
    )
    if runtime.settings.oidc.groups_claim not in claims and tokens.access_token is not None:
        claims = await sessions.userinfo_claims(flow, tokens.access_token, claims)
    return tokens, claims
