"""Keys derived from the configured session secrets, one unrelated key per purpose.

Every worker and replica sharing a config derives the same keys with nothing else to distribute,
and rotating a secret rotates every key made from it. HKDF (RFC 5869) with SHA-256 and no salt:
RFC 5869 3.1 allows a missing salt ("set to a string of HashLen zeros"), and the `info` string is
what keeps the assertion key, the session key and the login-state key independent of each other.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from proxy.config.model import Secret


def derive_key(secret: Secret, purpose: bytes, length: int = 32) -> bytes:
    """`length` bytes of key material for `purpose` (HKDF `info`), the same wherever derived."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose).derive(
        secret.reveal().encode()
    )
