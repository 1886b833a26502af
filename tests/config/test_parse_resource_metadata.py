"""A route's `resource_metadata` (RFC 9728): what it becomes, and the identifiers refused."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import ResourceMetadata
from tests.config.conftest import Issues

APP = {"name": "app", "upstream": "http://127.0.0.1:8080", "allow": {"authenticated": True}}


def test_resource_metadata_keys_map_onto_the_model(document: dict[str, Any]) -> None:
    """Every key becomes its field; scopes keep their order without duplicates."""
    document["routes"] = [
        {
            **APP,
            "resource_metadata": {
                "resource": "https://api.example.com/v1",
                "scopes_supported": ["api:read", "api:write", "api:read"],
                "resource_name": "Example API",
                "resource_documentation": "https://docs.example.com/api",
            },
        }
    ]

    (route,) = parse_settings(document, {}).routes

    assert route.resource_metadata == ResourceMetadata(
        resource="https://api.example.com/v1",
        scopes_supported=("api:read", "api:write"),
        resource_name="Example API",
        resource_documentation="https://docs.example.com/api",
    )
    # RFC 9728 3.1: the well-known string goes between the host and the path.
    assert route.resource_metadata.url == (
        "https://api.example.com/.well-known/oauth-protected-resource/v1"
    )


def test_a_resource_without_a_path_is_served_at_the_bare_well_known_url(
    document: dict[str, Any],
) -> None:
    """A resource without a path is served at the well-known string alone."""
    document["routes"] = [{**APP, "resource_metadata": {"resource": "https://api.example.com"}}]

    (route,) = parse_settings(document, {}).routes

    assert route.resource_metadata is not None
    assert route.resource_metadata.url == (
        "https://api.example.com/.well-known/oauth-protected-resource"
    )


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("http://api.example.com", "a resource identifier is an https URL"),
        ("https://api.example.com/v1?x=1", "must not have a query or fragment"),
        ("https://api.example.com/v1#top", "must not have a query or fragment"),
        ("https://api.example.com/a%20b", "the path must not be percent-encoded"),
        ('https://api.example.com/a"b', "must not contain quotes"),
        ("https://api.example.com/a//b", "must be a normalised path"),
        ("api.example.com", "expected an absolute http or https URL"),
    ],
)
def test_identifiers_rfc_9728_does_not_allow_are_refused(
    document: dict[str, Any], issues: Issues, resource: str, expected: str
) -> None:
    """Each identifier RFC 9728 rules out, or idgate could not serve or quote, is named."""
    document["routes"] = [{**APP, "resource_metadata": {"resource": resource}}]

    reported = issues(document)

    assert len(reported) == 1, reported
    assert reported[0].startswith("routes[0].resource_metadata.resource: "), reported
    assert expected in reported[0]


def test_resource_is_required_and_unknown_keys_are_named(
    document: dict[str, Any], issues: Issues
) -> None:
    """`resource` is required; a misspelt key is reported."""
    document["routes"] = [{**APP, "resource_metadata": {"scopes": ["a"]}}]

    assert issues(document) == [
        "routes[0].resource_metadata.resource: required",
        "routes[0].resource_metadata.scopes: unknown key",
    ]


def test_a_public_route_publishes_no_metadata(document: dict[str, Any], issues: Issues) -> None:
    """A public route asks for no token, so publishing where to get one is a mistake."""
    document["routes"] = [
        {
            "name": "open",
            "upstream": "http://127.0.0.1:8080",
            "public": True,
            "resource_metadata": {"resource": "https://api.example.com"},
        }
    ]

    assert issues(document) == [
        (
            "routes[0].resource_metadata: cannot be combined with public: true: a public route "
            "asks for no token"
        )
    ]


def test_routes_sharing_a_resource_must_publish_the_same_document(
    document: dict[str, Any], issues: Issues
) -> None:
    """Routes may share a resource only with the same block."""
    read = {"resource": "https://api.example.com", "scopes_supported": ["read"]}
    document["routes"] = [
        {**APP, "name": "reads", "methods": ["GET"], "resource_metadata": read},
        {**APP, "name": "writes", "resource_metadata": read},
        {**APP, "name": "other", "resource_metadata": {**read, "scopes_supported": ["write"]}},
    ]

    assert issues(document) == [
        (
            "routes[2].resource_metadata: publishes https://api.example.com differently from route "
            "'reads': give both the same resource_metadata"
        )
    ]
