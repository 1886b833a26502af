"""Authorize: match the route, identify the caller when the route needs one, evaluate its policy.

Every outcome is written to the request context before anything is raised, so observe can log
and count the decision whatever the response turns out to be. Route matching comes first: a
public route is served without parsing any credential, and an unknown path is 404 before any
token work.
"""

from __future__ import annotations

from aiohttp import web

from proxy.errors import (
    Forbidden,
    InvalidToken,
    NoRoute,
    ProviderUnavailable,
    StepUpRequired,
    Unauthenticated,
)
from proxy.policy.decision import Decision, Outcome
from proxy.policy.evaluate import evaluate
from proxy.reasons import Reason
from proxy.stages.context import RequestContext
from proxy.stages.cors import is_cors_preflight
from proxy.stages.identify import identify


async def authorize(request: web.Request, ctx: RequestContext) -> Decision:
    """The allow (or audit would_deny) Decision for the request `ctx` describes (its method,
    host and normalised path); raises when it is not one."""
    route = ctx.runtime.routes.match(host=ctx.host, path=ctx.path, method=ctx.method)
    if route is None:
        raise NoRoute("no route for this request")
    ctx.route = route
    if route.allow_cors_preflight and is_cors_preflight(ctx.method, request.headers):
        # Fetch: a CORS-preflight request never carries credentials, so it cannot be identified;
        # the upstream answers it and the real request that follows is judged as usual.
        decision = Decision(outcome=Outcome.ALLOW, reason=Reason.CORS_PREFLIGHT, route=route)
        ctx.decision = decision
        return decision
    if route.policy.public:
        principal = None
    else:
        try:
            if ctx.trace is None:
                principal = await identify(request, ctx)
            else:
                with ctx.trace.stage("identify"):
                    principal = await identify(request, ctx)
        except (Unauthenticated, ProviderUnavailable) as error:
            if isinstance(error, InvalidToken):
                ctx.token_failure = error.failure
                ctx.token_issuer = error.issuer
            ctx.decision = Decision(
                outcome=Outcome.UNAUTHENTICATED, reason=error.reason, route=route
            )
            raise
    decision = evaluate(route, principal)
    ctx.decision = decision
    if decision.outcome is Outcome.UNAUTHENTICATED:
        step_up = route.step_up
        if decision.reason is Reason.STEP_UP and step_up is not None:
            # The session stays: it is good for other routes, and signing in again replaces it.
            raise StepUpRequired(max_age=step_up.max_age_seconds, acr_values=step_up.acr_values)
        raise Unauthenticated("sign in required", reason=decision.reason)
    if decision.outcome is Outcome.DENY:
        raise Forbidden(decision.reason)
    return decision
