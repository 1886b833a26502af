"""Sealing: AES-256-GCM authenticated encryption of session bytes, with key rotation.

A sealed value is `key id (4) || nonce (12) || ciphertext || tag (16)`, base64url without
padding, so it is made only of cookie-octets (RFC 6265 4.1.1) and needs no quoting. The key id is
the first 4 bytes of SHA-256 of the derived key: `open` picks the key directly instead of trying
each secret, and reveals nothing about the key. Each purpose derives its own keys (HKDF `info`),
so a value sealed for one purpose never opens for another.

The overhead is a constant 32 bytes and nothing is compressed: compressing attacker-influenced
data next to secrets before encryption leaks the secrets through the ciphertext length (CRIME,
BREACH), and a session record holds claims an attacker may partly choose.

Nonces are random: NIST SP 800-38D 8.3 bounds a key to 2**32 random-nonce encryptions, far more
than sessions sealed under one secret between rotations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from proxy.config.model import Secret
from proxy.keyderive import derive_key

KEY_BYTES: Final = 32
_KEY_ID_BYTES: Final = 4
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16


class SealError(Exception):
    """A sealed value that does not open: malformed, truncated, unknown key, or tampered with.

    The message names the kind of failure only, never the value.
    """


def encrypt(aead: AESGCM, plaintext: bytes, *, aad: bytes) -> bytes:
    """`nonce || ciphertext || tag` under a fresh random nonce."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def decrypt(aead: AESGCM, data: bytes, *, aad: bytes) -> bytes:
    """The plaintext of `encrypt`'s output; SealError unless it is intact and the aad matches."""
    if len(data) < _NONCE_BYTES + _TAG_BYTES:
        raise SealError("sealed value is truncated")
    try:
        return aead.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise SealError("sealed value failed authentication") from None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64url without padding: one encoding per value, so no character is malleable."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealError("sealed value is not base64url") from None
    # The decoder skips foreign characters and ignores the unused low bits of the last one, so
    # only a value that re-encodes to itself is the canonical form.
    if b64encode(data) != text:
        raise SealError("sealed value is not canonical base64url")
    return data


class Sealer:
    """Seals with the newest secret's key; opens with any configured secret's key."""

    def __init__(self, secrets: Sequence[Secret], *, purpose: bytes) -> None:
        if not secrets:
            raise ValueError("at least one session secret is needed to seal")
        self._keys: dict[bytes, AESGCM] = {}
        for secret in secrets:
            key = derive_key(secret, purpose, KEY_BYTES)
            # setdefault: a repeated secret, or (2**-32 odds) a colliding id, keeps the newer key.
            self._keys.setdefault(hashlib.sha256(key).digest()[:_KEY_ID_BYTES], AESGCM(key))
        self._current_id, self._current = next(iter(self._keys.items()))

    def seal(self, plaintext: bytes, *, aad: bytes = b"") -> str:
        return b64encode(self._current_id + encrypt(self._current, plaintext, aad=aad))

    def open(self, token: str, *, aad: bytes = b"") -> bytes:
        data = b64decode(token)
        aead = self._keys.get(data[:_KEY_ID_BYTES])
        if aead is None:
            raise SealError("sealed value names an unknown key")
        return decrypt(aead, data[_KEY_ID_BYTES:], aad=aad)
