"""Whether a client certificate was issued by one of a policy's CAs (`certificate_issuers`).

The signature decides, not the names: a certificate whose issuer name merely copies a device CA's
subject is not the device CA's. Certificates forwarded by a proxy carry no chain, so this is a
check of the leaf against the configured CAs directly; an intermediate must be listed itself.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature


@lru_cache(maxsize=64)
def _authorities(issuers: tuple[bytes, ...]) -> tuple[x509.Certificate, ...]:
    """The configured CAs, parsed once per policy (the tuple is the config's own)."""
    return tuple(x509.load_der_x509_certificate(der) for der in issuers)


@lru_cache(maxsize=4096)
def issued_by(leaf_der: bytes, issuers: tuple[bytes, ...]) -> str | None:
    """The subject of the CA in `issuers` that signed `leaf_der`, or None. Remembered: a device
    presents the same certificate on every request, and a signature check costs a public-key
    operation."""
    leaf = x509.load_der_x509_certificate(leaf_der)
    for authority in _authorities(issuers):
        try:
            leaf.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return authority.subject.rfc4514_string()
    return None
