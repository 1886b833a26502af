"""The `issuers` list: named token issuers, their claims, and routes that name them."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.load import parse_settings
from proxy.config.model import ClaimMapping, IssuerKind, IssuerSettings
from tests.config.conftest import Issues

PARTNER = {
    "name": "partner",
    "issuer": "https://partner.example",
    "jwks_uri": "https://partner.example/keys",
    "audiences": ["partner-api"],
}


def test_an_issuer_is_read_with_its_claims_and_lifetime(document: dict[str, Any]) -> None:
    document["issuers"] = [
        PARTNER
        | {
            "claims": {
                "user": ["preferred_username", "sub"],
                "email": "upn",
                "groups": "/https:~1~1example.com~1roles",
            },
            "max_token_lifetime": "1h",
            "leeway": 10,
            "algorithms": ["ES256"],
        }
    ]

    [issuer] = parse_settings(document, {}).issuers

    assert issuer == IssuerSettings(
        name="partner",
        kind=IssuerKind.OIDC,
        issuer="https://partner.example",
        jwks_uri="https://partner.example/keys",
        audiences=("partner-api",),
        algorithms=("ES256",),
        claims=ClaimMapping(
            user=("preferred_username", "sub"),
            email=("upn",),
            groups=("/https:~1~1example.com~1roles",),
        ),
        max_token_lifetime_seconds=3600,
        leeway_seconds=10,
    )


def test_the_oidc_block_is_the_issuer_named_oidc_and_takes_claim_lists(
    document: dict[str, Any],
) -> None:
    document["oidc"] |= {"user_claim": ["preferred_username", "sub"], "groups_claim": "roles"}

    settings = parse_settings(document, {})

    [browser] = settings.all_issuers
    assert browser.name == "oidc"
    assert browser.issuer == "https://login.example.com"
    assert browser.claims == ClaimMapping(user=("preferred_username", "sub"), groups=("roles",))
    assert browser.audiences == ()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": "oidc"}, "issuers[0].name: `oidc` is the name of the issuer the oidc block"),
        ({"name": "Partner"}, "issuers[0].name: use lower-case letters, digits and '-'"),
        ({"audiences": None}, "issuers[0].audiences: required"),
        ({"audiences": []}, "issuers[0].audiences: must not be empty"),
        ({"issuer": None}, "issuers[0].issuer: required"),
        ({"kind": "saml"}, "issuers[0].kind: must be one of: oidc"),
        (
            {"discovery": "https://partner.example/d"},
            "issuers[0].jwks_uri: discovery and jwks_uri exclude",
        ),
        ({"claims": {"user": "/a~2b"}}, "issuers[0].claims.user: a JSON Pointer writes '~'"),
        ({"claims": {"name": "sub"}}, "issuers[0].claims.name: unknown key"),
        ({"max_token_lifetime": "1.5s"}, "issuers[0].max_token_lifetime: must be a whole"),
        ({"leeway": 120}, "issuers[0].leeway: must be between 0 and 60"),
        ({"ca_file": "/nonexistent/ca.pem"}, "issuers[0].ca_file:"),
    ],
)
def test_a_bad_issuer_names_its_key(
    document: dict[str, Any], issues: Issues, change: dict[str, Any], problem: str
) -> None:
    document["issuers"] = [{k: v for k, v in (PARTNER | change).items() if v is not None}]

    found = issues(document)

    assert any(line.startswith(problem) for line in found), found


def test_names_and_issuers_are_unique(document: dict[str, Any], issues: Issues) -> None:
    document["issuers"] = [PARTNER, PARTNER | {"audiences": ["other"]}]

    assert issues(document) == [
        "issuers[1].name: 'partner' is already the name of issuers[0]",
        "issuers[1].issuer: issuers[0] has the same issuer: a token's `iss` must name one issuer",
    ]


def test_a_named_issuer_may_share_the_iss_of_an_oidc_block_without_audiences(
    document: dict[str, Any], issues: Issues
) -> None:
    """The `oidc` block without audiences takes no bearer tokens, so the iss stays unambiguous;
    with audiences, two issuers would claim the same tokens."""
    same = PARTNER | {"issuer": document["oidc"]["issuer"]}
    document["issuers"] = [same]
    assert issues(document) == []

    document["oidc"]["audiences"] = ["api"]
    assert issues(document) == [
        "issuers[0].issuer: oidc has the same issuer: a token's `iss` must name one issuer"
    ]


def test_a_route_names_the_issuers_it_accepts(document: dict[str, Any], issues: Issues) -> None:
    document["issuers"] = [PARTNER]
    document["routes"][0]["issuers"] = ["partner", "oidc"]
    assert parse_settings(document, {}).routes[0].issuers == frozenset({"partner", "oidc"})

    document["routes"][0]["issuers"] = ["partners"]
    assert issues(document) == [
        "routes[0].issuers[0]: names no issuer; the issuers are: oidc, partner"
    ]
