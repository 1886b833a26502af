"""Device conditions: a policy on the client certificate itself (fingerprint, key, names, CA)."""

from __future__ import annotations

import base64
import hashlib
import time

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proxy.config.model import Policy, Route, Rule
from proxy.identity.client_cert import certificate_principal
from proxy.identity.principal import CredentialSource, Principal
from proxy.policy.decision import Outcome
from proxy.policy.evaluate import evaluate
from proxy.reasons import Reason
from tests.support.certificates import CertificateAuthority, Issued

DEVICE_CA = CertificateAuthority.create("device CA")
LAPTOP = DEVICE_CA.issue(
    common_name="laptop-17", dns_names=("laptop-17.corp.example",), emails=("Ann@Example.com",)
)
#: Another CA that calls itself "device CA" too: only the signature tells them apart.
IMPOSTOR = CertificateAuthority.create("device CA").issue(common_name="laptop-17")


def principal(issued: Issued) -> Principal:
    return certificate_principal(issued.certificate, now=time.time())


def decide(rule: Rule, issued: Issued, *, deny: Rule | None = None) -> tuple[Outcome, str | None]:
    route = Route(name="managed", policy=Policy(allow=rule, deny=deny))
    decision = evaluate(route, principal(issued))
    return decision.outcome, decision.matched


def fingerprint(issued: Issued) -> str:
    return hashlib.sha256(issued.der).hexdigest()


def spki(issued: Issued) -> str:
    key = issued.certificate.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


def test_a_pinned_fingerprint_or_key_admits_that_certificate_only() -> None:
    """A fingerprint or SPKI pin admits the one certificate (or key) it names, no other."""
    by_fingerprint = Rule(certificate_fingerprints=frozenset({fingerprint(LAPTOP)}))
    by_key = Rule(certificate_spki_pins=frozenset({spki(LAPTOP)}))

    assert decide(by_fingerprint, LAPTOP) == (
        Outcome.ALLOW,
        f"certificate_fingerprint:{fingerprint(LAPTOP)}",
    )
    assert decide(by_key, LAPTOP)[0] is Outcome.ALLOW
    assert decide(by_fingerprint, IMPOSTOR)[0] is Outcome.DENY
    assert decide(by_key, IMPOSTOR)[0] is Outcome.DENY


def test_san_dns_names_and_emails_match_case_insensitively() -> None:
    """The certificate's DNS and email SANs are conditions of their own."""
    assert decide(Rule(certificate_dns_names=frozenset({"laptop-17.corp.example"})), LAPTOP) == (
        Outcome.ALLOW,
        "certificate_dns_name:laptop-17.corp.example",
    )
    assert decide(Rule(certificate_emails=frozenset({"ann@example.com"})), LAPTOP)[0] is (
        Outcome.ALLOW
    )
    assert decide(Rule(certificate_dns_names=frozenset({"other.example"})), LAPTOP)[0] is (
        Outcome.DENY
    )


def test_the_issuing_ca_is_decided_by_the_signature_not_the_name() -> None:
    """Managed devices are what the device CA signed; a CA with the same name is not it."""
    managed = Rule(certificate_issuers=(DEVICE_CA.root.der,))

    outcome, matched = decide(managed, LAPTOP)

    assert outcome is Outcome.ALLOW
    assert matched is not None
    assert matched.startswith("certificate_issuer:CN=device CA")
    assert decide(managed, IMPOSTOR)[0] is Outcome.DENY


def test_a_device_condition_in_deny_wins() -> None:
    """A lost laptop's certificate is denied by fingerprint although its CA is allowed."""
    outcome, _ = decide(
        Rule(certificate_issuers=(DEVICE_CA.root.der,)),
        LAPTOP,
        deny=Rule(certificate_fingerprints=frozenset({fingerprint(LAPTOP)})),
    )
    assert outcome is Outcome.DENY


def test_identities_without_a_certificate_meet_no_device_condition() -> None:
    """A bearer token or a session is never a device: device conditions do not match them."""
    route = Route(
        name="managed", policy=Policy(allow=Rule(certificate_issuers=(DEVICE_CA.root.der,)))
    )
    token_holder = Principal(
        user="ann",
        email=None,
        groups=frozenset(),
        claims={},
        source=CredentialSource.BEARER,
        expires_at=time.time() + 60,
    )
    decision = evaluate(route, token_holder)
    assert (decision.outcome, decision.reason) == (Outcome.DENY, Reason.NOT_ALLOWED)
