"""Applying `rate_limits` to a request: sign-in starts and callbacks before they cost anything,
failed authentications once they have failed, so an identified request is never limited."""

from __future__ import annotations

from typing import Final

from proxy.errors import IdgateError, RateLimited
from proxy.policy.rate_limits import TokenBuckets
from proxy.stages.context import RequestContext

SIGN_IN: Final = "sign_in"
CALLBACK: Final = "callback"
FAILED_AUTH: Final = "failed_auth"


def enforce(ctx: RequestContext, buckets: TokenBuckets | None, limit: str) -> None:
    """Raise RateLimited (429) when the client has used up `limit`; count it."""
    if buckets is None:
        return
    wait = buckets.take(ctx.client_ip)
    if wait > 0.0:
        ctx.runtime.metrics.rate_limited.labels(limit=limit).inc()
        raise RateLimited(wait)


def after_failure(ctx: RequestContext, error: IdgateError) -> IdgateError:
    """`error`, or RateLimited when it is a 401 and the client has had too many of them.

    A gateway's forward-auth subrequest keeps its 401: nginx `auth_request` treats any other
    status as an error (500), and the gateway can limit its own clients."""
    if error.status != 401 or ctx.for_gateway:
        return error
    try:
        enforce(ctx, ctx.runtime.rate_limits.failed_auth, FAILED_AUTH)
    except RateLimited as limited:
        return limited
    return error
