"""The one error -> response table: status, reason, challenge and page for every IdgateError."""

from __future__ import annotations

import dataclasses
import json

import pytest
from aiohttp.test_utils import make_mocked_request

from proxy.config.model import PagesSettings, Policy, ResourceMetadata, Route, Rule
from proxy.errors import (
    BadRequest,
    Forbidden,
    ForwardAuthRefused,
    IdgateError,
    InvalidToken,
    MethodNotAllowed,
    NoRoute,
    OriginRefused,
    ProviderUnavailable,
    RateLimited,
    RequestTooLarge,
    SignInFailed,
    StepUpRequired,
    Unauthenticated,
    UpstreamError,
    UpstreamTimeout,
)
from proxy.reasons import Reason, TokenFailure
from proxy.runtime import Runtime
from proxy.stages.responses import error_response
from tests.support.context import make_context

TABLE = [
    (BadRequest("bad"), 400, "bad_request"),
    (RequestTooLarge("big"), 431, "bad_request"),
    (Unauthenticated("sign in"), 401, "no_credentials"),
    (InvalidToken(TokenFailure.EXPIRED), 401, "invalid_token"),
    (SignInFailed("failed"), 401, "sign_in_failed"),
    (Forbidden(Reason.DENY_RULE), 403, "deny_rule"),
    (ForwardAuthRefused("no route", reason=Reason.NO_ROUTE), 403, "no_route"),
    (OriginRefused("origin"), 403, "origin"),
    (NoRoute("none"), 404, "no_route"),
    (MethodNotAllowed("method"), 405, "bad_request"),
    (RateLimited(12.5), 429, "rate_limited"),
    (ProviderUnavailable("down"), 503, "provider_unavailable"),
    (UpstreamError("unavailable"), 502, "internal_error"),
    (UpstreamTimeout("slow"), 504, "internal_error"),
    (IdgateError("bug"), 500, "internal_error"),
]


@pytest.mark.parametrize(("error", "status", "reason"), TABLE)
async def test_api_clients_get_status_reason_and_request_id(
    runtime: Runtime, error: IdgateError, status: int, reason: str
) -> None:
    """Every error answers API clients with its status and JSON naming reason and request id."""
    request = make_mocked_request("GET", "/admin", headers={"Accept": "application/json"})
    ctx = make_context(runtime, path="/admin")

    response = error_response(error, request=request, ctx=ctx, settings=runtime.settings)

    assert response.status == status
    assert response.headers["Cache-Control"] == "no-store"
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == {
        "error": error.public_message,
        "reason": reason,
        "status": status,
        "request_id": "req-1",
    }


@pytest.mark.parametrize(
    ("error", "challenge"),
    [
        (Unauthenticated("sign in"), 'Bearer realm="idgate"'),
        (InvalidToken(TokenFailure.SIGNATURE), 'Bearer realm="idgate", error="invalid_token"'),
        (SignInFailed("failed"), 'Bearer realm="idgate"'),
        (Forbidden(Reason.NOT_ALLOWED), None),
        (BadRequest("bad"), None),
    ],
)
async def test_only_401s_carry_a_bearer_challenge(
    runtime: Runtime, error: IdgateError, challenge: str | None
) -> None:
    """RFC 6750 3.1: a 401 challenges, with error="invalid_token" only for a failed token."""
    request = make_mocked_request("GET", "/admin")
    response = error_response(
        error, request=request, ctx=make_context(runtime), settings=runtime.settings
    )
    assert response.headers.get("WWW-Authenticate") == challenge


async def test_an_unavailable_provider_says_when_to_retry(runtime: Runtime) -> None:
    """503 for a provider or store that cannot answer tells the client to retry shortly."""
    request = make_mocked_request("GET", "/admin")
    response = error_response(
        ProviderUnavailable("down"), request=request, ctx=None, settings=runtime.settings
    )
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"


async def test_a_limited_client_is_told_when_to_come_back(runtime: Runtime) -> None:
    """429 carries Retry-After in whole seconds, rounded up."""
    request = make_mocked_request("GET", "/oauth2/start")
    response = error_response(
        RateLimited(12.5), request=request, ctx=None, settings=runtime.settings
    )
    assert response.headers["Retry-After"] == "13"


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(runtime: Runtime) -> None:
    """A browser's GET without credentials becomes a redirect to sign-in naming this URL."""
    request = make_mocked_request("GET", "/admin", headers={"Accept": "text/html"})
    ctx = make_context(runtime, path="/admin", upstream_path="/admin", query="x=1")

    response = error_response(
        Unauthenticated("sign in"), request=request, ctx=ctx, settings=runtime.settings
    )

    assert response.status == 302
    assert response.headers["Location"] == (
        "https://idgate.test/oauth2/start?rd=https%3A%2F%2Fapp.example.com%2Fadmin%3Fx%3D1"
    )


async def test_a_browser_denied_sees_the_route_and_a_way_out(runtime: Runtime) -> None:
    """A browser refused by policy gets the access-denied page naming the route it asked for."""
    route = runtime.settings.routes[1]
    request = make_mocked_request("GET", "/admin", headers={"Accept": "text/html"})
    ctx = make_context(runtime, route=route)

    response = error_response(
        Forbidden(Reason.NOT_ALLOWED), request=request, ctx=ctx, settings=runtime.settings
    )

    assert response.status == 403
    assert response.text is not None
    assert f"<code>{route.name}</code>" in response.text
    assert "/oauth2/sign_out" in response.text


@pytest.mark.parametrize(
    ("error", "challenge"),
    [
        (Unauthenticated("sign in"), 'Bearer realm="idgate"'),
        (InvalidToken(TokenFailure.EXPIRED), 'Bearer realm="idgate", error="invalid_token"'),
        (
            StepUpRequired(max_age=60, acr_values=()),
            (
                'Bearer realm="idgate", error="insufficient_user_authentication", '
                'error_description="A more recent or stronger sign-in is required", max_age="60"'
            ),
        ),
    ],
)
async def test_a_route_publishing_metadata_adds_it_to_every_challenge(
    runtime: Runtime, error: IdgateError, challenge: str
) -> None:
    """RFC 9728 5.1: `resource_metadata` is one more auth-param after the route's own."""
    request = make_mocked_request("GET", "/api", headers={"Accept": "application/json"})
    ctx = make_context(runtime, path="/api")
    metadata = ResourceMetadata(resource="https://api.example.com/v1")
    ctx.route = Route(
        name="api", policy=Policy(allow=Rule(authenticated=True)), resource_metadata=metadata
    )

    response = error_response(error, request=request, ctx=ctx, settings=runtime.settings)

    assert response.headers["WWW-Authenticate"] == (
        f'{challenge}, resource_metadata="{metadata.url}"'
    )


@pytest.mark.parametrize(
    ("referer", "back"),
    [
        ("https://app.example.com/reports?week=1", "https://app.example.com/reports?week=1"),
        ("https://evil.example/phish", "https://idgate.test/"),
        ("https://app.example.com.evil.example/", "https://idgate.test/"),
        ("https://app.example.com/admin", "https://idgate.test/"),
        (None, "https://idgate.test/"),
    ],
)
async def test_the_denied_page_leads_back_and_to_help(
    runtime: Runtime, referer: str | None, back: str
) -> None:
    """The access-denied page links back to the page the person came from when it is on the same
    origin (else home), to signing in as someone else, and to `pages.help_url`."""
    settings = dataclasses.replace(
        runtime.settings, pages=PagesSettings(help_url="https://desk.example/access?a=1&b=2")
    )
    headers = {"Accept": "text/html"} | ({"Referer": referer} if referer else {})
    request = make_mocked_request("GET", "/admin", headers=headers)
    ctx = make_context(runtime, route=runtime.settings.routes[1], upstream_path="/admin")

    response = error_response(
        Forbidden(Reason.NOT_ALLOWED), request=request, ctx=ctx, settings=settings
    )

    assert response.text is not None
    assert f'<a class="button" href="{back.replace("&", "&amp;")}">Go back</a>' in response.text
    assert '<a href="https://desk.example/access?a=1&amp;b=2">ask for access</a>' in response.text
    assert (
        '<a href="https://idgate.test/oauth2/sign_out?rd=https%3A%2F%2Fapp.example.com%2Fadmin">'
        "sign in as someone else</a>"
    ) in response.text
