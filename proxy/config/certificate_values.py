"""Converters for the device conditions of a policy (`certificate_*`): fingerprints, SPKI pins,
and the CA files whose certificates mark managed devices."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from proxy.config.parse_tls import path_value
from proxy.config.values import InvalidValueError, text

_HEX_SHA256: Final = re.compile(r"[0-9a-f]{64}\Z")


def certificate_fingerprint(value: object) -> str:
    """A SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it or as plain hex."""
    digest = text(value).replace(":", "").lower()
    if not _HEX_SHA256.match(digest):
        raise InvalidValueError("expected a SHA-256 fingerprint: 64 hex digits, ':' allowed")
    return digest


def spki_pin(value: object) -> str:
    """A base64 SHA-256 of a SubjectPublicKeyInfo (Envoy's `verify_certificate_spki`)."""
    try:
        digest = base64.b64decode(text(value), validate=True)
    except binascii.Error:
        raise InvalidValueError("expected the base64 SHA-256 of a public key") from None
    if len(digest) != 32:
        raise InvalidValueError("expected the base64 SHA-256 of a public key (32 bytes)")
    return base64.b64encode(digest).decode("ascii")


def ca_certificates(value: object) -> tuple[bytes, ...]:
    """The CA certificates (DER) in a PEM file; the file is read, so a bad one is an issue here."""
    path = path_value(value)
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as error:
        raise InvalidValueError(f"cannot read the file: {error.strerror}") from None
    except ValueError:
        raise InvalidValueError("expected PEM CA certificates") from None
    return tuple(certificate.public_bytes(Encoding.DER) for certificate in certificates)
