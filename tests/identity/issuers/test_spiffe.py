"""JWT-SVIDs: `sub` must be a SPIFFE ID of the issuer's own trust domain."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.model import IssuerKind, IssuerSettings, SpiffeSettings
from proxy.errors import InvalidToken
from proxy.identity.issuers.spiffe import svid_principal
from proxy.reasons import TokenFailure

SETTINGS = IssuerSettings(
    name="mesh",
    kind=IssuerKind.SPIFFE,
    issuer="https://spire.example.org",
    jwks_uri="https://spire.example.org/bundle",
    audiences=("idgate",),
    spiffe=SpiffeSettings(trust_domain="example.org"),
)


def test_the_spiffe_id_is_the_user_and_the_spiffe_id() -> None:
    """A JWT-SVID's identity is its SPIFFE ID in both places, as a certificate's would be."""
    claims = {"sub": "spiffe://example.org/ns/prod/sa/api", "aud": ["idgate"], "exp": 2e9}

    principal = svid_principal(claims, SETTINGS, 2e9)

    assert principal.user == principal.spiffe_id == "spiffe://example.org/ns/prod/sa/api"
    assert (principal.service_account, principal.issuer) == (None, "mesh")


@pytest.mark.parametrize(
    ("subject", "failure"),
    [
        ("spiffe://evil.org/ns/prod/sa/api", TokenFailure.WRONG_TRUST_DOMAIN),
        ("spiffe://example.org.evil.org/ns/prod", TokenFailure.WRONG_TRUST_DOMAIN),
        ("spiffe://org/ns/prod", TokenFailure.WRONG_TRUST_DOMAIN),
        ("https://example.org/ns/prod", TokenFailure.MALFORMED),
        ("spiffe://Example.org/ns/prod", TokenFailure.MALFORMED),
        ("spiffe://example.org/ns//prod", TokenFailure.MALFORMED),
        ("api", TokenFailure.MALFORMED),
        (None, TokenFailure.MISSING_CLAIM),
        (["spiffe://example.org/a"], TokenFailure.MISSING_CLAIM),
    ],
)
def test_a_subject_outside_the_trust_domain_is_refused(subject: Any, failure: TokenFailure) -> None:
    """Another trust domain, a look-alike one, and anything that is not a SPIFFE ID are
    refused, whatever key signed the token."""
    with pytest.raises(InvalidToken) as raised:
        svid_principal({"sub": subject}, SETTINGS, 2e9)
    assert raised.value.failure is failure
