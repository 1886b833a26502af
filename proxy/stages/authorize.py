"""Authorize: match the route, identify the caller when the route needs one, evaluate its policy.

Every outcome is written to the request context before anything is raised, so observe can log
and count the decision whatever the response turns out to be. Route matching comes first: a
public route is served without parsing any credential, and an unknown path is 404 before any
token work.
"""

from __future__ import annotations

from aiohttp import web

from proxy.errors import Forbidden, InvalidToken, NoRoute, ProviderUnavailable, Unauthenticated
from proxy.policy.decision import Decision, Outcome
from proxy.policy.evaluate import evaluate
from proxy.runtime import Runtime
from proxy.stages.context import RequestContext
from proxy.stages.identify import identify


async def authorize(
    request: web.Request,
    ctx: RequestContext,
    runtime: Runtime,
    *,
    method: str,
    host: str,
    path: str,
) -> Decision:
    """The allow (or audit would_deny) Decision for this target; raises when it is not one."""
    route = runtime.routes.match(host=host, path=path, method=method)
    if route is None:
        raise NoRoute("no route for this request")
    ctx.route = route
    if route.policy.public:
        principal = None
    else:
        try:
            principal = await identify(request, ctx, runtime)
        except (Unauthenticated, ProviderUnavailable) as error:
            if isinstance(error, InvalidToken):
                ctx.token_failure = error.failure
            ctx.decision = Decision(
                outcome=Outcome.UNAUTHENTICATED, reason=error.reason, route=route
            )
            raise
    decision = evaluate(route, principal)
    ctx.decision = decision
    if decision.outcome is Outcome.UNAUTHENTICATED:
        raise Unauthenticated("sign in required", reason=decision.reason)
    if decision.outcome is Outcome.DENY:
        raise Forbidden(decision)
    return decision
