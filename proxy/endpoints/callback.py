"""`/oauth2/callback`: finish the code flow, start a session, return to where the user was.

Every failure here ends in the same place: a page that offers to sign in again, the state cookie
cleared, the reason counted in `idgate_logins_total{result=...}`; no provider text is echoed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from proxy.config.model import BROWSER_ISSUER, StepUp
from proxy.endpoints.redirects import vet_redirect
from proxy.errors import BadRequest, InvalidToken, ProviderUnavailable, SignInFailed
from proxy.identity.claims import first_claim, principal_from_claims, sign_in_from_claims
from proxy.identity.principal import CredentialSource, SignIn
from proxy.oidc.flow import FlowError, FlowFailure, TokenSet
from proxy.oidc.id_token import verify_id_token
from proxy.policy.step_up import unmet
from proxy.reasons import TokenFailure
from proxy.runtime import Runtime
from proxy.sessions.login_state import InvalidLoginState
from proxy.sessions.model import SignInOrigin
from proxy.sessions.store import SessionTooLarge
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
        tokens, claims, sign_in = await _complete(
            runtime, code=query["code"], nonce=login.nonce, code_verifier=login.code_verifier
        )
        if login.step_up is not None:
            _check_step_up(login.step_up, sign_in)
    except _StepUpUnmet as error:
        # The provider answered with less than was asked (or the user edited the request): the
        # old session, if any, stays; returning to the route would only send the browser back.
        metrics.logins.labels(result="step_up_unmet").inc()
        _log.warning("sign-in did not meet the step-up it asked for: %s", error)
        raise SignInFailed("the sign-in was not as recent or strong as the page needs") from None
    except (FlowError, InvalidToken) as error:
        metrics.logins.labels(result="failure").inc()
        _log.warning("sign-in failed: %s", error)
        raise SignInFailed("the sign-in could not be completed") from None
    except ProviderUnavailable:
        metrics.logins.labels(result="failure").inc()
        raise

    origin = SignInOrigin.of(
        issuer=runtime.settings.oidc.issuer,
        client=ctx.client_ip,
        user_agent=request.headers.get("User-Agent"),
    )
    try:
        cookies = await runtime.sessions.create(
            claims, tokens, request.cookies, sign_in=sign_in, origin=origin
        )
    except SessionTooLarge as error:
        # The user's page names the fix; so must the log, or the operator sees only a 500.
        metrics.logins.labels(result="session_too_large").inc()
        _log.warning("sign-in refused: %s", error)
        raise
    ctx.set_cookies.extend(cookies)
    metrics.logins.labels(result="success").inc()
    # Named in the decision line: who signed in (create has refused a sign-in naming no one).
    ctx.principal = principal_from_claims(
        claims,
        runtime.settings.oidc.claim_mapping,
        issuer=BROWSER_ISSUER,
        source=CredentialSource.SESSION,
        expires_at=time.time(),
    )
    settings = runtime.settings
    target = vet_redirect(
        login.redirect_to,
        public_url=settings.public_url,
        allowed_domains=settings.allowed_redirect_domains,
    )
    response = web.Response(status=302, headers={"Location": target or "/"})
    response.headers["Cache-Control"] = NO_STORE
    return response


class _StepUpUnmet(Exception):
    """The new sign-in does not meet the step-up it was started for."""


def _check_step_up(step_up: StepUp, sign_in: SignIn) -> None:
    # OIDC Core 2 auth_time: "When a max_age request is made or when auth_time is requested as an
    # Essential Claim, then this Claim is REQUIRED".
    if step_up.max_age_seconds is not None and sign_in.auth_time is None:
        raise InvalidToken(TokenFailure.MISSING_CLAIM, "ID token has no auth_time for max_age")
    failed = unmet(step_up, sign_in, now=time.time())
    if failed is not None:
        raise _StepUpUnmet(f"the ID token does not meet {failed.value}")


async def _complete(
    runtime: Runtime, *, code: str, nonce: str, code_verifier: str
) -> tuple[TokenSet, dict[str, Any], SignIn]:
    """Exchange the code, verify the ID token, and complete the claims from userinfo when the
    ID token lacks the groups claim (many providers keep groups out of ID tokens). The SignIn
    (`auth_time`, `acr`, `amr`) is the ID token's alone: userinfo does not vouch for a sign-in."""
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
    sign_in = sign_in_from_claims(claims)
    groups = first_claim(claims, runtime.settings.oidc.groups_claim)
    if groups is None and tokens.access_token is not None:
        claims = await sessions.userinfo_claims(flow, tokens.access_token, claims)
    return tokens, claims, sign_in
