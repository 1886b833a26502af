"""Client certificates as identities: the certificate idgate's TLS listener verified, or the one a
trusted proxy verified and forwarded in a header, becomes a Principal.

The user is the certificate's SPIFFE ID (its one `spiffe://` URI SAN), or else its subject's
common name; the email is its one rfc822Name SAN. A certificate outside its validity window, or
one naming several SPIFFE IDs, is refused (401); a header that cannot be read is a 400. Pure: the
connection and headers are read by proxy/stages/identify.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from proxy.config.model import ForwardedCertificateFormat
from proxy.config.values import InvalidValueError, spiffe_id
from proxy.errors import BadRequest, Unauthenticated
from proxy.identity.principal import CredentialSource, DeviceCertificate, Principal
from proxy.reasons import Reason

#: Client certificates a TLS-terminating proxy forwards to idgate: idgate turns them into the
#: identity headers; passing the raw certificate on would give upstreams a second, unchecked path.
FORWARDED_CLIENT_CERT_HEADERS: Final = frozenset(
    {
        "x-forwarded-client-cert",
        "x-forwarded-tls-client-cert",
        "x-forwarded-tls-client-cert-info",
        "x-ssl-client-cert",
        "x-client-cert",
        "ssl-client-cert",
        "client-cert",
        "client-cert-chain",
    }
)

#: An XFCC element without `Cert` says nothing of the certificate's validity: the proxy vouched
#: for the handshake it just did, so the identity serves this request and nothing longer.
VOUCHED_SECONDS: Final = 60.0
_NO_CLAIMS: Final[Mapping[str, Any]] = MappingProxyType({})
_PEM_BEGIN: Final = "-----BEGIN"
# RFC 8941 3.3.5: sf-binary = ":" *(base64) ":"
_SF_BINARY: Final = re.compile(r":([A-Za-z0-9+/]*={0,2}):")


def _refused(message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=Reason.INVALID_CERTIFICATE)


def _malformed() -> BadRequest:
    return BadRequest("malformed client certificate header")


def certificate_principal(certificate: x509.Certificate, *, now: float) -> Principal:
    """The identity a verified certificate names; raises Unauthenticated or BadRequest."""
    if now < certificate.not_valid_before_utc.timestamp():
        raise _refused("client certificate is not valid yet")
    expires_at = certificate.not_valid_after_utc.timestamp()
    if now > expires_at:
        raise _refused("client certificate has expired")
    uris, emails, dns_names = _alternative_names(certificate)
    spiffe = _spiffe_id(uris)
    return Principal(
        user=spiffe or _common_name(certificate),
        email=emails[0] if len(emails) == 1 else None,
        groups=frozenset(),
        claims=_NO_CLAIMS,
        source=CredentialSource.CLIENT_CERT,
        expires_at=expires_at,
        spiffe_id=spiffe,
        certificate=_device(certificate, emails, dns_names),
    )


def _device(
    certificate: x509.Certificate, emails: list[str], dns_names: list[str]
) -> DeviceCertificate:
    der = certificate.public_bytes(Encoding.DER)
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return DeviceCertificate(
        der=der,
        sha256=hashlib.sha256(der).hexdigest(),
        spki_sha256=base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii"),
        dns_names=frozenset(name.lower() for name in dns_names),
        emails=frozenset(address.lower() for address in emails),
    )


def _alternative_names(certificate: x509.Certificate) -> tuple[list[str], list[str], list[str]]:
    """(URI SANs, rfc822Name SANs, dNSName SANs)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], []
    except (ValueError, x509.DuplicateExtension):
        raise BadRequest("unreadable client certificate") from None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    emails = names.get_values_for_type(x509.RFC822Name)
    return uris, emails, names.get_values_for_type(x509.DNSName)


def _spiffe_id(uris: Sequence[str]) -> str | None:
    """The SPIFFE ID among a certificate's URI SANs; None when none is a `spiffe://` URI."""
    if not any(uri.lower().startswith("spiffe://") for uri in uris):
        return None
    # SPIFFE X.509-SVID 2: "An X.509 SVID MUST contain exactly one URI SAN, and by extension,
    # exactly one SPIFFE ID."
    if len(uris) != 1:
        raise _refused("client certificate names several URIs; an X.509-SVID has exactly one")
    try:
        return spiffe_id(uris[0])
    except InvalidValueError:
        raise _refused("client certificate has a malformed SPIFFE ID") from None


def _common_name(certificate: x509.Certificate) -> str:
    try:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        raise BadRequest("unreadable client certificate") from None
    value = names[0].value if len(names) == 1 else None
    if not isinstance(value, str) or not value:
        raise _refused("client certificate names neither a SPIFFE ID nor one common name")
    return value


def der_principal(der: bytes, *, now: float) -> Principal:
    """The identity in a DER certificate (as the TLS stack hands over the peer's)."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        raise BadRequest("unreadable client certificate") from None
    return certificate_principal(certificate, now=now)


def forwarded_principal(
    values: Sequence[str], forwarded_format: ForwardedCertificateFormat, *, now: float
) -> Principal | None:
    """The identity in a trusted proxy's client-certificate header (every line of it, in order);
    None when there is none. Only call this for a request from a trusted proxy."""
    if not any(value.strip() for value in values):
        return None
    if forwarded_format is ForwardedCertificateFormat.XFCC:
        # RFC 9110 5.3: several field lines are one comma-separated list.
        return _xfcc_principal(xfcc_elements(",".join(values))[-1], now=now)
    if len(values) != 1:
        raise _malformed()
    if forwarded_format is ForwardedCertificateFormat.PEM:
        return certificate_principal(_pem_certificate(unquote(values[0])), now=now)
    # RFC 9440 2.2: Client-Cert is the DER certificate as an RFC 8941 Byte Sequence.
    match = _SF_BINARY.fullmatch(values[0].strip())
    if match is None:
        raise _malformed()
    return der_principal(_base64(match.group(1)), now=now)


def _pem_certificate(text: str) -> x509.Certificate:
    """A PEM certificate, or its base64 body alone (Traefik drops the BEGIN/END lines)."""
    text = text.strip()
    try:
        if text.startswith(_PEM_BEGIN):
            return x509.load_pem_x509_certificate(text.encode("ascii"))
        return x509.load_der_x509_certificate(_base64("".join(text.split())))
    except (ValueError, UnicodeEncodeError):
        raise _malformed() from None


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise _malformed() from None


def _xfcc_principal(element: Sequence[tuple[str, str]], *, now: float) -> Principal:
    """The element's `Cert` when it has one; else its `URI` values, which only a trusted proxy
    may vouch for (the caller's duty). `By`, `Hash`, `Subject`, `DNS` and `Chain` are not used."""
    certificates = [value for key, value in element if key == "cert"]
    if len(certificates) > 1:
        raise _malformed()
    if certificates:
        return certificate_principal(_pem_certificate(unquote(certificates[0])), now=now)
    spiffe = _spiffe_id([value for key, value in element if key == "uri"])
    if spiffe is None:
        raise _refused("the forwarded client certificate names no SPIFFE ID and carries no Cert")
    return Principal(
        user=spiffe,
        email=None,
        groups=frozenset(),
        claims=_NO_CLAIMS,
        source=CredentialSource.CLIENT_CERT,
        expires_at=now + VOUCHED_SECONDS,
        spiffe_id=spiffe,
    )


def xfcc_elements(value: str) -> list[list[tuple[str, str]]]:
    """An `X-Forwarded-Client-Cert` value as its elements, each a list of (lower-case key, value).

    Envoy: "The XFCC header value is a comma (",") separated string. Each substring is an XFCC
    element ... Each XFCC element is a semicolon (";") separated string. Each substring is a
    key-value pair, grouped together by an equals ("=") sign. The keys are case-insensitive, the
    values are case-sensitive. If ",", ";" or "=" appear in a value, the value should be
    double-quoted. Double-quotes in the value should be replaced by backslash-double-quote (\\")."
    Raises BadRequest for an unterminated quote, a pair without "=", or an empty element.
    """
    elements: list[list[tuple[str, str]]] = []
    pairs: list[tuple[str, str]] = []
    key: str | None = None
    chars: list[str] = []
    quoted = False
    position = 0
    while position < len(value):
        char = value[position]
        position += 1
        if quoted:
            if char == "\\" and position < len(value):
                chars.append(value[position])
                position += 1
            elif char == '"':
                quoted = False
            else:
                chars.append(char)
        elif char == '"':
            quoted = True
        elif char == "=" and key is None:
            key, chars = "".join(chars).strip().lower(), []
        elif char in ";,":
            _end_pair(pairs, key, chars)
            key, chars = None, []
            if char == ",":
                elements.append(_nonempty(pairs))
                pairs = []
        else:
            chars.append(char)
    if quoted:
        raise _malformed()
    _end_pair(pairs, key, chars)
    elements.append(_nonempty(pairs))
    return elements


def _end_pair(pairs: list[tuple[str, str]], key: str | None, chars: list[str]) -> None:
    text = "".join(chars).strip()
    if key is None:
        if text:
            raise _malformed()
        return
    if not key:
        raise _malformed()
    pairs.append((key, text))


def _nonempty(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if not pairs:
        raise _malformed()
    return pairs
