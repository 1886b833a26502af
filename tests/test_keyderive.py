"""Key derivation from the session secrets: standard HKDF, one independent key per purpose."""

from __future__ import annotations

from proxy.config.model import Secret
from proxy.keyderive import derive_key

SECRET = Secret("a-session-secret-of-enough-entropy-0123456789")


def test_derivation_is_rfc_5869_hkdf_sha256() -> None:
    """RFC 5869 A.3 (SHA-256, no salt, no info): the published output key material."""
    okm = derive_key(Secret("\x0b" * 22), b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_the_same_secret_and_purpose_give_the_same_key() -> None:
    """Every worker and replica sharing a config derives identical keys."""
    assert derive_key(SECRET, b"idgate session v1") == derive_key(
        Secret(SECRET.reveal()), b"idgate session v1"
    )


def test_purposes_and_secrets_give_unrelated_keys() -> None:
    """Another purpose or another secret gives another key of the requested length."""
    session = derive_key(SECRET, b"idgate session v1")
    assert len(session) == 32
    assert derive_key(SECRET, b"idgate login state v1") != session
    assert derive_key(Secret("another-secret"), b"idgate session v1") != session
    assert len(derive_key(SECRET, b"idgate session v1", 40)) == 40
