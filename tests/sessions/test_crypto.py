"""Sealing: confidential and tamper-evident, cookie-safe, rotatable, bound to purpose and aad."""

from __future__ import annotations

import base64
import re

import pytest

from proxy.config.model import Secret
from proxy.sessions.crypto import Sealer, SealError

NEW = Secret("the-new-session-secret-0123456789abcdef")
OLD = Secret("the-old-session-secret-fedcba9876543210")
PURPOSE = b"idgate session v1"
PLAINTEXT = b'{"email":"alice@example.com","at":"access-token"}'
#: key id (4) + nonce (12) + tag (16)
OVERHEAD = 32


def sealer(*secrets: Secret, purpose: bytes = PURPOSE) -> Sealer:
    return Sealer(secrets, purpose=purpose)


def _raw(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_sealed_value_opens_to_the_plaintext() -> None:
    """What is sealed opens to the same bytes, with the same aad."""
    box = sealer(NEW)
    assert box.open(box.seal(PLAINTEXT, aad=b"_idgate"), aad=b"_idgate") == PLAINTEXT
    assert box.open(box.seal(b"")) == b""


def test_sealed_value_hides_the_plaintext_and_is_cookie_safe() -> None:
    """The sealed form is base64url without padding and shows nothing of the plaintext."""
    token = sealer(NEW).seal(PLAINTEXT)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert b"alice" not in _raw(token)
    assert "alice" not in token


def test_overhead_is_constant_and_nothing_is_compressed() -> None:
    """The sealed size depends only on the plaintext size, never on its content."""
    box = sealer(NEW)
    for size in (0, 1, 100, 5000):
        repetitive, varied = b"a" * size, bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        assert len(_raw(box.seal(repetitive))) == size + OVERHEAD
        assert len(box.seal(repetitive)) == len(box.seal(varied))


def test_each_seal_uses_a_fresh_nonce() -> None:
    """Sealing the same bytes twice gives different values (no equality leak across cookies)."""
    box = sealer(NEW)
    assert box.seal(PLAINTEXT) != box.seal(PLAINTEXT)


def test_value_sealed_before_a_rotation_opens_after_it() -> None:
    """After a new secret is prepended, values sealed with the old one still open."""
    before = sealer(OLD).seal(PLAINTEXT)
    assert sealer(NEW, OLD).open(before) == PLAINTEXT


def test_newest_secret_seals() -> None:
    """After a rotation new values are sealed with the new secret, so the old one can retire."""
    after = sealer(NEW, OLD).seal(PLAINTEXT)
    assert sealer(NEW).open(after) == PLAINTEXT
    with pytest.raises(SealError, match="unknown key"):
        sealer(OLD).open(after)


def test_value_of_a_removed_secret_no_longer_opens() -> None:
    """Once the old secret is removed from the list, what it sealed is refused."""
    before = sealer(OLD).seal(PLAINTEXT)
    with pytest.raises(SealError, match="unknown key"):
        sealer(NEW).open(before)


def test_same_secret_seals_alike_in_every_worker() -> None:
    """Two sealers built from the same configured secret open each other's values."""
    assert sealer(Secret(NEW.reveal())).open(sealer(NEW).seal(PLAINTEXT)) == PLAINTEXT


def test_tampering_with_any_byte_is_detected() -> None:
    """Flipping any single bit of a sealed value makes it fail to open."""
    box = sealer(NEW)
    raw = _raw(box.seal(PLAINTEXT, aad=b"_idgate"))
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[index] ^= bit
            with pytest.raises(SealError):
                box.open(_token(bytes(tampered)), aad=b"_idgate")


def test_changing_any_character_is_detected() -> None:
    """Replacing any character of the text, even in the last one's unused bits, fails to open."""
    box = sealer(NEW)
    token = box.seal(PLAINTEXT)
    for index, char in enumerate(token):
        for other in {"A", "B", "-", "_"} - {char}:
            with pytest.raises(SealError):
                box.open(token[:index] + other + token[index + 1 :])


def test_truncated_or_extended_values_fail() -> None:
    """A value cut short anywhere, or with bytes appended, fails to open."""
    box = sealer(NEW)
    token = box.seal(PLAINTEXT)
    for end in range(len(token)):
        with pytest.raises(SealError):
            box.open(token[:end])
    with pytest.raises(SealError):
        box.open(token + "AAAA")


def test_another_purpose_cannot_open() -> None:
    """A value sealed for the session does not open as login state, under the same secret."""
    session = sealer(NEW).seal(PLAINTEXT)
    with pytest.raises(SealError):
        sealer(NEW, purpose=b"idgate login state v1").open(session)


def test_another_aad_cannot_open() -> None:
    """A value sealed for one cookie name does not open for another, nor without one."""
    box = sealer(NEW)
    token = box.seal(PLAINTEXT, aad=b"_idgate")
    for aad in (b"_idgate_state", b""):
        with pytest.raises(SealError, match="authentication"):
            box.open(token, aad=aad)


@pytest.mark.parametrize(
    "token",
    [
        "not a sealed value: alice@example.com",
        "QWxpY2UgaXMgaGVyZQ==",
        "aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8",
        "ünïcödé-secret-token",
        "",
        "A",
    ],
)
def test_errors_never_echo_the_input(token: str) -> None:
    """An error message names the failure, never any part of the value it was given."""
    with pytest.raises(SealError) as caught:
        sealer(NEW).open(token)
    message = str(caught.value)
    assert len(token) < 4 or token not in message
    assert all(word not in message for word in ("alice", "secret", "aGVsbG8", "QWxp"))


def test_errors_never_echo_a_tampered_value() -> None:
    """Even a well-formed value that fails authentication is not repeated in the error."""
    token = sealer(OLD).seal(PLAINTEXT)
    for box in (sealer(NEW), sealer(OLD, purpose=b"other")):
        with pytest.raises(SealError) as caught:
            box.open(token)
        assert token[:8] not in str(caught.value)


def test_a_sealer_needs_a_secret() -> None:
    """Without any secret there is nothing to seal with: a configuration error."""
    with pytest.raises(ValueError, match="secret"):
        Sealer([], purpose=PURPOSE)
