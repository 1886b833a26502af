"""SessionRecord's wire form: lossless for this version, refused cleanly for anything else."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from proxy.identity.principal import NO_SIGN_IN, SignIn
from proxy.sessions.model import (
    FORMAT_VERSION,
    MAX_CLIENT_CHARS,
    MAX_USER_AGENT_CHARS,
    SessionFormatError,
    SessionRecord,
    SignInOrigin,
    is_handle,
)
from tests.sessions.records import record


def test_record_round_trips_through_bytes() -> None:
    """A record read back from its bytes equals the record written, claims included."""
    original = record(claims={"name": "Alice", "realm_access": {"roles": ["ops"]}})
    restored = SessionRecord.from_bytes(original.to_bytes())
    assert restored == replace(original, claims=restored.claims)
    assert dict(restored.claims) == {"name": "Alice", "realm_access": {"roles": ["ops"]}}


def test_optional_fields_round_trip_as_absent() -> None:
    """A session without provider sid, email or tokens reads back without them."""
    original = replace(
        record(provider_sid=None),
        email=None,
        id_token=None,
        access_token=None,
        refresh_token=None,
    )
    restored = SessionRecord.from_bytes(original.to_bytes())
    assert (restored.provider_sid, restored.email, restored.id_token) == (None, None, None)
    assert (restored.access_token, restored.refresh_token) == (None, None)


def test_restored_claims_are_read_only() -> None:
    """Claims read from a cookie cannot be changed in place by a policy or handler."""
    restored = SessionRecord.from_bytes(record().to_bytes())
    with pytest.raises(TypeError):
        restored.claims["name"] = "Mallory"  # type: ignore[index]


@pytest.mark.parametrize("version", [0, FORMAT_VERSION + 1, "1", None])
def test_another_format_version_is_refused(version: object) -> None:
    """A record written by another idgate version is refused rather than misread."""
    raw = json.loads(record().to_bytes())
    raw["v"] = version
    with pytest.raises(SessionFormatError, match="unknown session format"):
        SessionRecord.from_bytes(json.dumps(raw).encode())


def _with(**changes: object) -> bytes:
    raw = json.loads(record().to_bytes())
    raw.update(changes)
    return json.dumps(raw).encode()


def _without(field: str) -> bytes:
    raw = json.loads(record().to_bytes())
    del raw[field]
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[1]", id="array"),
        pytest.param(_without("sub"), id="missing-sub"),
        pytest.param(_with(sub=42), id="numeric-sub"),
        pytest.param(_with(email=["a@example.com"]), id="list-email"),
        pytest.param(_with(groups=[1, 2]), id="numeric-groups"),
        pytest.param(_with(groups=None), id="null-groups"),
        pytest.param(_with(claims=7), id="numeric-claims"),
        pytest.param(_with(created="yesterday"), id="text-time"),
    ],
)
def test_malformed_bytes_are_a_format_error(data: bytes) -> None:
    """Bytes that are not a well-formed record raise SessionFormatError, nothing else."""
    with pytest.raises(SessionFormatError, match="session"):
        SessionRecord.from_bytes(data)


def test_the_sign_in_round_trips() -> None:
    """auth_time, acr and amr of the sign-in read back as written."""
    original = replace(
        record(), sign_in=SignIn(auth_time=1_700_000_000.0, acr="urn:mfa", amr=frozenset({"otp"}))
    )
    restored = SessionRecord.from_bytes(original.to_bytes())
    assert restored.sign_in == original.sign_in
    assert restored.principal(expires_at=0.0).sign_in == original.sign_in


def test_a_record_written_before_sign_in_facts_reads_as_no_sign_in() -> None:
    """A record without auth_time, acr and amr opens as a sign-in of unknown age and strength,
    which meets no step-up (and is fine everywhere else)."""
    written = json.loads(record().to_bytes())
    for key in ("auth_time", "acr", "amr"):
        del written[key]
    restored = SessionRecord.from_bytes(json.dumps(written).encode())
    assert restored.sign_in == NO_SIGN_IN


@pytest.mark.parametrize(
    ("key", "value"), [("auth_time", "1"), ("acr", 5), ("amr", [1]), ("amr", "otp")]
)
def test_a_malformed_sign_in_is_refused(key: str, value: object) -> None:
    """A sign-in fact of the wrong type makes the record malformed, not silently weaker."""
    written = json.loads(record().to_bytes())
    written[key] = value
    with pytest.raises(SessionFormatError):
        SessionRecord.from_bytes(json.dumps(written).encode())


def test_a_handle_names_a_session_without_giving_its_id() -> None:
    """The handle is a fixed-form hash of the session id: the same for the same session, another
    for another, and it does not contain the id."""
    first, second = record(session_id="session-alice-1"), record(session_id="session-alice-2")
    assert first.handle == record(session_id="session-alice-1").handle
    assert first.handle != second.handle
    assert is_handle(first.handle)
    assert "session-alice-1" not in first.handle
    assert not is_handle("session-alice-1")
    assert not is_handle(first.handle.upper())


def test_a_sign_in_origin_keeps_printable_bounded_text() -> None:
    """A user agent is the client's to choose: control characters and non-ASCII become `?` and
    it is cut at MAX_USER_AGENT_CHARS; an absent one stays absent."""
    origin = SignInOrigin.of(
        issuer="https://id.example",
        client="2001:db8::1",
        user_agent="Evil\r\n\x1b[31mAgent é" + "x" * 1000,
    )
    assert origin.client == "2001:db8::1"
    assert origin.user_agent is not None
    assert origin.user_agent.startswith("Evil???[31mAgent ?x")
    assert len(origin.user_agent) == MAX_USER_AGENT_CHARS
    assert SignInOrigin.of(issuer="i", client="c" * 500, user_agent=None) == SignInOrigin(
        issuer="i", client="c" * MAX_CLIENT_CHARS, user_agent=None
    )
