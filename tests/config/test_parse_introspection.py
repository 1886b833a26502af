"""An issuer's `introspection`: what it becomes, its bounded cache, and who may have one."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import IntrospectionSettings, Secret
from tests.config.conftest import Issues


def opaque_issuer(name: str = "opaque", **introspection: Any) -> dict[str, Any]:
    return {
        "name": name,
        "issuer": f"https://{name}.example.com",
        "audiences": ["https://api.example.com"],
        "introspection": {"client_id": "idgate", "client_secret": "${SECRET}", **introspection},
    }


def test_introspection_keys_map_onto_the_model(document: dict[str, Any]) -> None:
    """Every key becomes its field, the secret from the environment."""
    document["issuers"] = [
        opaque_issuer(
            endpoint="https://opaque.example.com/introspect",
            cache_seconds=30,
            require_audience=False,
        )
    ]

    (issuer,) = parse_settings(document, {"SECRET": "s3cret"}).issuers

    assert issuer.introspection == IntrospectionSettings(
        client_id="idgate",
        client_secret=Secret("s3cret"),
        endpoint="https://opaque.example.com/introspect",
        cache_seconds=30,
        require_audience=False,
    )


def test_defaults_ask_discovery_cache_a_minute_and_require_an_audience(
    document: dict[str, Any],
) -> None:
    """Defaults: discovery's endpoint, 60 seconds, an `aud` required, the secret never shown."""
    document["issuers"] = [opaque_issuer()]

    (issuer,) = parse_settings(document, {"SECRET": "s"}).issuers

    assert issuer.introspection is not None
    assert issuer.introspection.endpoint is None
    assert issuer.introspection.cache_seconds == 60
    assert issuer.introspection.require_audience is True
    assert "s" not in repr(issuer.introspection.client_secret)


@pytest.mark.parametrize("cache_seconds", [-1, 301])
def test_the_cache_ceiling_is_bounded(
    document: dict[str, Any], issues: Issues, cache_seconds: int
) -> None:
    """`cache_seconds` outside 0 to 300 is refused with why."""
    document["issuers"] = [opaque_issuer(cache_seconds=cache_seconds)]

    assert issues(document, {"SECRET": "s"}) == [
        (
            "issuers[0].introspection.cache_seconds: must be between 0 and 300: a revoked token "
            "keeps working as long as its answer is reused"
        )
    ]


def test_client_credentials_are_required(document: dict[str, Any], issues: Issues) -> None:
    """`client_id` and `client_secret` are required."""
    document["issuers"] = [{**opaque_issuer(), "introspection": {"endpoint": "https://x/i"}}]

    assert issues(document) == [
        "issuers[0].introspection.client_id: required",
        "issuers[0].introspection.client_secret: required",
    ]


def test_only_one_issuer_may_introspect(document: dict[str, Any], issues: Issues) -> None:
    """An opaque token names no issuer: with two, each provider would see the other's tokens."""
    document["issuers"] = [opaque_issuer("first"), opaque_issuer("second")]

    assert issues(document, {"SECRET": "s"}) == [
        (
            "issuers[1].introspection: issuers[0] introspects opaque tokens already: only one "
            "issuer may"
        )
    ]
