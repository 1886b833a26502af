"""Warnings: configurations that load but may not do what the operator means."""

from __future__ import annotations

from typing import Any

from proxy.config.advice import config_warnings
from proxy.config.load import parse_settings


def warnings_of(document: dict[str, Any]) -> list[str]:
    return [str(warning) for warning in config_warnings(parse_settings(document, {}))]


def test_api_audiences_draw_no_warning(document: dict[str, Any]) -> None:
    """A config that lists the API audiences of its bearer tokens is warned about nothing."""
    document["oidc"]["audiences"] = ["https://api.example.com"]

    assert warnings_of(document) == []


def test_no_audiences_warns_that_no_bearer_token_is_accepted(document: dict[str, Any]) -> None:
    """Without `oidc.audiences` the warning says bearer tokens are refused and how to list them."""
    [warning] = warnings_of(document)

    assert warning.startswith("oidc.audiences: not set, so no bearer token is accepted")
    assert "audiences: [https://api.example.com]" in warning


def test_the_client_id_opt_in_warns_that_id_tokens_open_routes(document: dict[str, Any]) -> None:
    """`accept_client_id_audience` is named, with the risk it takes and the way off it."""
    document["oidc"]["accept_client_id_audience"] = True

    [warning] = warnings_of(document)

    assert warning.startswith("oidc.accept_client_id_audience: bearer tokens for 'idgate'")
    assert "a leaked ID token opens routes" in warning
    assert "oauth2-proxy" in warning


def test_introspection_without_an_audience_warns_that_any_token_of_the_provider_passes(
    document: dict[str, Any],
) -> None:
    introspection: dict[str, Any] = {
        "client_id": "idgate",
        "client_secret": "s",
        "require_audience": False,
    }
    document["issuers"] = [
        {
            "name": "partner",
            "issuer": "https://partner.example.com",
            "audiences": ["https://api.example.com"],
            "introspection": introspection,
        }
    ]

    [warning] = warnings_of(document)

    assert warning.startswith(
        "issuers[0].introspection.require_audience: opaque tokens of 'partner' are accepted "
        "without an `aud`"
    )
    introspection["require_audience"] = True
    assert warnings_of(document) == []


def test_a_cors_opening_on_a_route_without_options_warns(document: dict[str, Any]) -> None:
    """`allow_cors_preflight` beside `methods` that leave out OPTIONS could never apply."""
    document["oidc"]["audiences"] = ["https://api.example.com"]
    document["routes"][0] |= {"allow_cors_preflight": True, "methods": ["GET"]}

    [warning] = warnings_of(document)

    assert warning.startswith("routes[0].allow_cors_preflight: route 'app' lists methods")
    document["routes"][0]["methods"] = ["GET", "OPTIONS"]
    assert warnings_of(document) == []
