"""Client certificates to Principals: SPIFFE IDs, common names, validity, and forwarded headers."""

from __future__ import annotations

import base64
import datetime
import time
from urllib.parse import quote

import pytest

from proxy.config.model import ForwardedCertificateFormat
from proxy.errors import BadRequest, Unauthenticated
from proxy.identity.client_cert import (
    VOUCHED_SECONDS,
    certificate_principal,
    der_principal,
    forwarded_principal,
    xfcc_elements,
)
from proxy.identity.principal import CredentialSource
from proxy.reasons import Reason
from tests.support.certificates import ONE_DAY, CertificateAuthority, Issued

SPIFFE_ID = "spiffe://example.org/ns/prod/sa/invoicer"
XFCC = ForwardedCertificateFormat.XFCC
PEM = ForwardedCertificateFormat.PEM
RFC9440 = ForwardedCertificateFormat.RFC9440


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


@pytest.fixture(scope="module")
def workload(ca: CertificateAuthority) -> Issued:
    """A SPIFFE X.509-SVID that also has a common name."""
    return ca.issue(common_name="invoicer", uris=(SPIFFE_ID,))


@pytest.fixture(scope="module")
def person(ca: CertificateAuthority) -> Issued:
    """A certificate with a common name and an email address, no URI."""
    return ca.issue(common_name="alice", emails=("alice@example.com",))


def now() -> float:
    return time.time()


def test_a_spiffe_certificate_names_its_spiffe_id_as_the_user(workload: Issued) -> None:
    """The one spiffe:// URI SAN is both the user and the SPIFFE ID; the CN is not used."""
    principal = certificate_principal(workload.certificate, now=now())

    assert principal.user == SPIFFE_ID
    assert principal.spiffe_id == SPIFFE_ID
    assert principal.source is CredentialSource.CLIENT_CERT
    assert principal.groups == frozenset()
    assert principal.email is None
    assert dict(principal.claims) == {}


def test_the_identity_expires_with_the_certificate(workload: Issued) -> None:
    """expires_at is the certificate's notAfter as a Unix time."""
    principal = certificate_principal(workload.certificate, now=now())

    assert principal.expires_at == workload.certificate.not_valid_after_utc.timestamp()


def test_without_a_spiffe_id_the_common_name_is_the_user(person: Issued) -> None:
    """A certificate with no URI SAN names its subject CN, and its rfc822Name as the email."""
    principal = certificate_principal(person.certificate, now=now())

    assert principal.user == "alice"
    assert principal.spiffe_id is None
    assert principal.email == "alice@example.com"


def test_a_uri_that_is_not_spiffe_leaves_the_common_name_as_user(
    ca: CertificateAuthority,
) -> None:
    """An https URI SAN is no SPIFFE ID: the CN names the user."""
    issued = ca.issue(common_name="build-bot", uris=("https://ci.example.com/bot",))

    principal = certificate_principal(issued.certificate, now=now())

    assert (principal.user, principal.spiffe_id) == ("build-bot", None)


def test_several_email_addresses_give_no_email(ca: CertificateAuthority) -> None:
    """With two rfc822Names neither is chosen, so no email or domain rule can match by accident."""
    issued = ca.issue(common_name="shared", emails=("a@example.com", "b@example.org"))

    assert certificate_principal(issued.certificate, now=now()).email is None


@pytest.mark.parametrize(
    ("uris", "message"),
    [
        ((SPIFFE_ID, "spiffe://example.org/other"), "several URIs"),
        ((SPIFFE_ID, "https://example.org/x"), "several URIs"),
        (("spiffe://Example.ORG/x",), "malformed SPIFFE ID"),
        (("spiffe://",), "malformed SPIFFE ID"),
    ],
)
def test_a_certificate_that_is_not_a_valid_svid_is_refused(
    ca: CertificateAuthority, uris: tuple[str, ...], message: str
) -> None:
    """An X.509-SVID has exactly one URI SAN with a well-formed SPIFFE ID; anything else is 401."""
    issued = ca.issue(common_name="ambiguous", uris=uris)

    with pytest.raises(Unauthenticated, match=message) as refused:
        certificate_principal(issued.certificate, now=now())

    assert refused.value.status == 401
    assert refused.value.reason is Reason.INVALID_CERTIFICATE


def test_a_certificate_naming_nobody_is_refused(ca: CertificateAuthority) -> None:
    """Neither a SPIFFE ID nor a common name: there is no user to name."""
    issued = ca.issue(emails=("nobody@example.com",))

    with pytest.raises(Unauthenticated, match="neither a SPIFFE ID nor one common name"):
        certificate_principal(issued.certificate, now=now())


def test_an_expired_certificate_is_refused(ca: CertificateAuthority) -> None:
    """A certificate past its notAfter is refused with a clear reason."""
    past = datetime.datetime.now(datetime.UTC) - 2 * ONE_DAY
    issued = ca.issue(uris=(SPIFFE_ID,), not_before=past - ONE_DAY, not_after=past)

    with pytest.raises(Unauthenticated, match="client certificate has expired"):
        certificate_principal(issued.certificate, now=now())


def test_a_certificate_not_yet_valid_is_refused(ca: CertificateAuthority) -> None:
    """A certificate before its notBefore is refused too."""
    future = datetime.datetime.now(datetime.UTC) + ONE_DAY
    issued = ca.issue(uris=(SPIFFE_ID,), not_before=future, not_after=future + ONE_DAY)

    with pytest.raises(Unauthenticated, match="not valid yet"):
        certificate_principal(issued.certificate, now=now())


def test_der_from_the_tls_stack_is_read(workload: Issued) -> None:
    """The peer certificate's DER bytes give the same identity."""
    assert der_principal(workload.der, now=now()).spiffe_id == SPIFFE_ID


def test_unreadable_der_is_a_bad_request() -> None:
    """Bytes that are no certificate are a 400, never a 500."""
    with pytest.raises(BadRequest):
        der_principal(b"\x30\x03\x02\x01\x00", now=now())


# --- X-Forwarded-Client-Cert -------------------------------------------------------------------


def test_xfcc_cert_is_read_from_the_element_the_nearest_proxy_added(
    workload: Issued, person: Issued
) -> None:
    """Of several elements, the last one (the nearest proxy's) counts; its Cert names the user."""
    value = (
        f'By=spiffe://example.org/edge;Cert="{person.escaped_pem}",'
        f'By=spiffe://example.org/gate;Hash=abc;Cert="{workload.escaped_pem}";'
        "URI=spiffe://example.org/ignored"
    )

    principal = forwarded_principal([value], XFCC, now=now())

    assert principal is not None
    assert principal.user == SPIFFE_ID
    assert principal.expires_at == workload.certificate.not_valid_after_utc.timestamp()


def test_xfcc_lines_are_one_list_whose_last_element_counts(
    workload: Issued, person: Issued
) -> None:
    """Two header lines are read as one comma-separated value (RFC 9110 5.3)."""
    lines = [f'Cert="{workload.escaped_pem}"', f'Cert="{person.escaped_pem}"']

    principal = forwarded_principal(lines, XFCC, now=now())

    assert principal is not None
    assert principal.user == "alice"


def test_xfcc_uri_alone_names_the_spiffe_id_for_this_request_only() -> None:
    """Istio's default element (By, Hash, Subject, URI; no Cert) gives the SPIFFE ID, briefly."""
    value = (
        'By=spiffe://cluster.local/ns/default/sa/gate;Hash=0f1e;Subject="";'
        "URI=spiffe://cluster.local/ns/default/sa/sleep"
    )
    at = now()

    principal = forwarded_principal([value], XFCC, now=at)

    assert principal is not None
    assert principal.user == principal.spiffe_id == "spiffe://cluster.local/ns/default/sa/sleep"
    assert principal.expires_at == at + VOUCHED_SECONDS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("By=spiffe://example.org/gate;Hash=0f1e", "names no SPIFFE ID and carries no Cert"),
        ("URI=https://example.org/app", "names no SPIFFE ID"),
        (f"URI={SPIFFE_ID};URI=spiffe://example.org/b", "several URIs"),
    ],
)
def test_xfcc_without_a_usable_identity_is_refused(value: str, message: str) -> None:
    """An element that names no single SPIFFE ID and has no Cert identifies nobody: 401."""
    with pytest.raises(Unauthenticated, match=message):
        forwarded_principal([value], XFCC, now=now())


def test_xfcc_keys_are_case_insensitive_and_quoted_values_may_hold_separators() -> None:
    """`cert`/`URI` match in any case; `,`, `;`, `=` and `\\"` inside quotes stay in the value."""
    elements = xfcc_elements('By=a;SUBJECT="CN=x, O=\\"q\\";z";uri=spiffe://example.org/a , Hash=b')

    assert elements == [
        [("by", "a"), ("subject", 'CN=x, O="q";z'), ("uri", "spiffe://example.org/a")],
        [("hash", "b")],
    ]


def test_an_expired_forwarded_certificate_is_refused(ca: CertificateAuthority) -> None:
    """The proxy verified the chain; idgate still checks the validity window on every request."""
    past = datetime.datetime.now(datetime.UTC) - 2 * ONE_DAY
    issued = ca.issue(uris=(SPIFFE_ID,), not_before=past - ONE_DAY, not_after=past)

    with pytest.raises(Unauthenticated, match="expired"):
        forwarded_principal([f'Cert="{issued.escaped_pem}"'], XFCC, now=now())


@pytest.mark.parametrize(
    "value",
    [
        'Cert="unterminated',
        "Cert=abc;junk",
        "Hash=a,,Hash=b",
        "Hash=a,",
        "=value",
        'Cert="not%20a%20certificate"',
        'Cert="-----BEGIN%20CERTIFICATE-----%0Anope%0A-----END%20CERTIFICATE-----"',
    ],
)
def test_malformed_xfcc_is_a_bad_request(value: str) -> None:
    """Whatever the proxy sent, an unreadable header is a 400, never a 500."""
    with pytest.raises(BadRequest):
        forwarded_principal([value], XFCC, now=now())


def test_two_certs_in_one_xfcc_element_are_a_bad_request(workload: Issued, person: Issued) -> None:
    """One element describes one certificate; two Cert keys are ambiguous."""
    value = f'Cert="{workload.escaped_pem}";Cert="{person.escaped_pem}"'

    with pytest.raises(BadRequest):
        forwarded_principal([value], XFCC, now=now())


@pytest.mark.parametrize("form", [XFCC, PEM, RFC9440])
@pytest.mark.parametrize("values", [[], [""], ["  "]])
def test_no_or_empty_header_is_no_certificate(
    form: ForwardedCertificateFormat, values: list[str]
) -> None:
    """nginx sends an empty value when the client had no certificate: no credentials, not 400."""
    assert forwarded_principal(values, form, now=now()) is None


# --- url-escaped PEM and RFC 9440 ----------------------------------------------------------------


def test_escaped_pem_names_the_user(workload: Issued) -> None:
    """nginx's `$ssl_client_escaped_cert` is the url-encoded PEM."""
    principal = forwarded_principal([workload.escaped_pem], PEM, now=now())

    assert principal is not None
    assert principal.spiffe_id == SPIFFE_ID


def test_pem_body_without_its_delimiters_is_read(person: Issued) -> None:
    """Traefik sends the escaped base64 body without the BEGIN/END lines."""
    body = "".join(person.pem.decode("ascii").splitlines()[1:-1])

    principal = forwarded_principal([quote(body, safe="")], PEM, now=now())

    assert principal is not None
    assert principal.user == "alice"


@pytest.mark.parametrize("value", ["not a certificate", "%ZZ", "AAAA"])
def test_unreadable_pem_is_a_bad_request(value: str) -> None:
    """Text that is no certificate in either form is a 400."""
    with pytest.raises(BadRequest):
        forwarded_principal([value], PEM, now=now())


def test_two_pem_header_lines_are_a_bad_request(workload: Issued, person: Issued) -> None:
    """Only XFCC is a list; two single-certificate lines are ambiguous."""
    with pytest.raises(BadRequest):
        forwarded_principal([workload.escaped_pem, person.escaped_pem], PEM, now=now())


def test_rfc9440_byte_sequence_is_read(workload: Issued) -> None:
    """`Client-Cert: :<base64 DER>:` (RFC 9440) names the user."""
    value = f":{base64.b64encode(workload.der).decode('ascii')}:"

    principal = forwarded_principal([value], RFC9440, now=now())

    assert principal is not None
    assert principal.spiffe_id == SPIFFE_ID


@pytest.mark.parametrize("value", ["MIIB", ":MII B:", ":!!!!:", "::"])
def test_malformed_rfc9440_is_a_bad_request(value: str) -> None:
    """A value that is not a byte sequence of a DER certificate is a 400."""
    with pytest.raises(BadRequest):
        forwarded_principal([value], RFC9440, now=now())
