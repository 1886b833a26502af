"""A route's options: `claim_headers`, `preserve_host`, `pass_session_access_token`,
`allow_cors_preflight`."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.load import parse_settings
from proxy.config.parse_claim_headers import claim_header_name
from proxy.config.values import InvalidValueError
from proxy.forward.headers import HOP_BY_HOP
from proxy.forward.identity_headers import SESSION_ACCESS_TOKEN
from proxy.stages.header_names import FORWARDING_HEADERS, IDENTITY_HEADERS
from tests.config.conftest import Issues


def test_upstream_options_map_onto_the_route(document: dict[str, Any]) -> None:
    """Header names keep their spelling, claim paths are kept as written, in order."""
    document["routes"][0] |= {
        "claim_headers": {"X-Team": "team", "X-Tenant": "org.id"},
        "preserve_host": True,
        "pass_session_access_token": True,
        "allow_cors_preflight": True,
    }

    (route,) = parse_settings(document, {}).routes

    assert route.claim_headers == (("X-Team", "team"), ("X-Tenant", "org.id"))
    assert route.preserve_host is True
    assert route.pass_session_access_token is True
    assert route.allow_cors_preflight is True


def test_upstream_options_are_off_by_default(document: dict[str, Any]) -> None:
    """Nothing extra reaches an upstream unless its route asks."""
    (route,) = parse_settings(document, {}).routes

    assert route.claim_headers == ()
    assert route.preserve_host is False
    assert route.pass_session_access_token is False
    assert route.allow_cors_preflight is False


@pytest.mark.parametrize(
    ("claim_headers", "message"),
    [
        ({"X Team": "team"}, 'routes[0].claim_headers["X Team"]: a header name is an RFC 9110'),
        ({"X-Forwarded-User": "sub"}, 'routes[0].claim_headers["X-Forwarded-User"]: idgate sets'),
        ({"x_authenticated_user": "sub"}, "routes[0].claim_headers.x_authenticated_user: idgate"),
        ({"Host": "sub"}, "routes[0].claim_headers.Host: idgate sets"),
        ({"X-Team": ".team"}, 'routes[0].claim_headers["X-Team"]: a claim path is'),
        ({"X-Team": ["team"]}, 'routes[0].claim_headers["X-Team"]: '),
        ({"X-Team": "a", "x-team": "b"}, 'routes[0].claim_headers["x-team"]: names the same'),
        ({}, "routes[0].claim_headers: must map at least one header name"),
    ],
)
def test_a_bad_claim_header_names_its_key(
    document: dict[str, Any], issues: Issues, claim_headers: object, message: str
) -> None:
    """Each refusal names the key it is about."""
    document["routes"][0]["claim_headers"] = claim_headers

    reported = issues(document)

    assert any(issue.startswith(message) for issue in reported), reported


@pytest.mark.parametrize(
    "name",
    sorted(
        IDENTITY_HEADERS
        | FORWARDING_HEADERS
        | HOP_BY_HOP
        | {SESSION_ACCESS_TOKEN.lower(), "traceparent", "tracestate"}
    ),
)
def test_every_header_idgate_sets_or_strips_is_refused_as_a_claim_header(name: str) -> None:
    """config cannot import the header lists (a lower layer); this keeps its own list in step.
    The W3C trace context is what tracing sends upstream in place of the client's."""
    with pytest.raises(InvalidValueError):
        claim_header_name(name)
