"""The one place where an IdgateError becomes an HTTP response.

API clients get JSON that says what happened (status, reason, request id) and nothing more: no
token, no upstream address, no exception text. Browsers (`Accept: text/html`) get a page, and a
browser that is not signed in is sent to sign in, with the URL it asked for kept. Every response
idgate writes itself is `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from aiohttp import web

from proxy.config.model import Settings
from proxy.errors import (
    Forbidden,
    IdgateError,
    InvalidToken,
    ProviderUnavailable,
    RateLimited,
    SignInFailed,
    StepUpRequired,
    Unauthenticated,
)
from proxy.policy.rate_limits import retry_after_header
from proxy.stages.context import RequestContext
from proxy.stages.pages import NO_STORE, denied_page, problem_page

_REALM: Final = 'Bearer realm="idgate"'
_HEADINGS: Final = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Access denied",
    404: "Not found",
    405: "Method not allowed",
    429: "Too many requests",
    408: "Request timed out",
    431: "Request too large",
    502: "The tool is not reachable",
    503: "Temporarily unavailable",
    504: "The tool did not answer in time",
}


def json_response(payload: object, *, status: int = 200) -> web.Response:
    response = web.json_response(payload, status=status)
    response.headers["Cache-Control"] = NO_STORE
    return response


def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def error_response(
    error: IdgateError, *, request: web.Request, ctx: RequestContext | None, settings: Settings
) -> web.Response:
    request_id = ctx.request_id if ctx is not None else None
    if wants_html(request):
        response = _page(error, request=request, ctx=ctx, settings=settings)
    else:
        payload: dict[str, object] = {
            "error": error.public_message,
            "reason": error.reason.value,
            "status": error.status,
        }
        if request_id is not None:
            payload["request_id"] = request_id
        response = json_response(payload, status=error.status)
    challenge = _challenge(error, response.status)
    if challenge is not None:
        response.headers["WWW-Authenticate"] = _with_resource_metadata(challenge, ctx)
    elif isinstance(error, ProviderUnavailable):
        response.headers["Retry-After"] = "5"
    elif isinstance(error, RateLimited):
        response.headers["Retry-After"] = retry_after_header(error.retry_after)
    return response


def _challenge(error: IdgateError, status: int) -> str | None:
    if isinstance(error, StepUpRequired):
        return step_up_challenge(error)
    if isinstance(error, InvalidToken):
        # RFC 6750 3.1: "invalid_token ... The resource SHOULD respond with ... 401".
        return f'{_REALM}, error="invalid_token"'
    if isinstance(error, Unauthenticated) and status == 401:
        # RFC 6750 3.1: a request without credentials gets the challenge without an error code.
        return _REALM
    return None


def _with_resource_metadata(challenge: str, ctx: RequestContext | None) -> str:
    """RFC 9728 5.1: "resource_metadata: The URL of the protected resource metadata", one more
    auth-param of the route's Bearer challenge (its URL holds no quote: the config makes sure)."""
    route = ctx.route if ctx is not None else None
    if route is None or route.resource_metadata is None:
        return challenge
    return f'{challenge}, resource_metadata="{route.resource_metadata.url}"'


def step_up_challenge(error: StepUpRequired) -> str:
    """RFC 9470 3: `error="insufficient_user_authentication"`, with `acr_values` ("A
    space-separated string listing the authentication context class reference values in order of
    preference") and `max_age` ("the allowable elapsed time in seconds since the last active
    authentication event"). The values come from the config, which refuses quotes and spaces
    inside them."""
    parts = [
        _REALM,
        'error="insufficient_user_authentication"',
        'error_description="A more recent or stronger sign-in is required"',
    ]
    if error.acr_values:
        parts.append(f'acr_values="{" ".join(error.acr_values)}"')
    if error.max_age is not None:
        parts.append(f'max_age="{error.max_age}"')
    return ", ".join(parts)


def sign_in_url(settings: Settings, return_to: str) -> str:
    base = settings.public_url.rstrip("/")
    return f"{base}{settings.prefix}/start?rd={quote(return_to, safe='')}"


def _requested_url(ctx: RequestContext | None) -> str:
    """The URL the user asked for (for forward-auth: the gateway's original request), as the
    place to return to after signing in; vetted again when sign-in starts."""
    if ctx is None or not ctx.authority:
        return "/"
    query = f"?{ctx.query}" if ctx.query else ""
    return f"{ctx.scheme}://{ctx.authority}{ctx.upstream_path}{query}"


def _previous_page(request: web.Request, ctx: RequestContext, *, here: str) -> str | None:
    """The page the person came from, when the browser says (Referer) and it is on this very
    origin: a link back there can lead nowhere else. None for this page itself."""
    referer = request.headers.get("Referer", "")
    origin = f"{ctx.scheme}://{ctx.authority}"
    if not referer.startswith(f"{origin}/") or referer == here or not referer.isprintable():
        return None
    return referer


def _page(
    error: IdgateError, *, request: web.Request, ctx: RequestContext | None, settings: Settings
) -> web.Response:
    request_id = ctx.request_id if ctx is not None else None
    here = _requested_url(ctx)
    start_again = sign_in_url(settings, "/" if isinstance(error, SignInFailed) else here)
    if isinstance(error, SignInFailed):
        return problem_page(
            status=401,
            heading="Sign-in did not complete",
            message=f"{error.public_message.capitalize()}. Please sign in again.",
            retry_url=start_again,
            request_id=request_id,
        )
    if (
        isinstance(error, Unauthenticated)
        and not isinstance(error, InvalidToken)
        and request.method in ("GET", "HEAD")
        and ctx is not None
        and not ctx.own_endpoint
    ):
        # A browser without a (live) session: off to sign in, and back here afterwards.
        response = web.Response(status=302, headers={"Location": start_again})
        response.headers["Cache-Control"] = NO_STORE
        return response
    if isinstance(error, Forbidden) and ctx is not None and ctx.route is not None:
        principal = ctx.principal
        base = settings.public_url.rstrip("/")
        sign_out = f"{base}{settings.prefix}/sign_out"
        return denied_page(
            route=ctx.route.name,
            user=principal.user if principal is not None else None,
            sign_out_url=sign_out,
            # Signing out with the page as the target signs in again there, asking who.
            switch_account_url=f"{sign_out}?rd={quote(here, safe='')}",
            back_url=_previous_page(request, ctx, here=here) or f"{base}/",
            help_url=settings.pages.help_url,
            request_id=request_id,
        )
    return problem_page(
        status=error.status,
        heading=_HEADINGS.get(error.status, "Something went wrong"),
        message=f"{error.public_message.capitalize()}.",
        retry_url=start_again if error.status == 401 else None,
        request_id=request_id,
    )
