"""The in-memory revocation view: what each kind refuses, lifts, expiry and its bound."""

from __future__ import annotations

import pytest

from proxy.sessions.revocations import (
    Revocation,
    RevocationFormatError,
    RevocationKind,
    Revocations,
)
from tests.sessions.records import CREATED_AT, record


class Clock:
    def __init__(self) -> None:
        self.now = CREATED_AT

    def __call__(self) -> float:
        return self.now


def revocation(kind: RevocationKind, value: str, at: float, *, lifted: bool = False) -> Revocation:
    return Revocation(kind=kind, value=value, revoked_at=at, expires_at=at + 100, lifted=lifted)


def test_a_user_revocation_refuses_sessions_created_up_to_it_and_not_later_ones() -> None:
    """Revoking user alice ends her sessions so far; she may sign in again afterwards."""
    view = Revocations(clock=Clock())
    view.apply([revocation(RevocationKind.USER, "alice", CREATED_AT + 10)])
    assert view.covers(record(created_at=CREATED_AT))
    assert view.covers(record(created_at=CREATED_AT + 10))
    assert not view.covers(record(created_at=CREATED_AT + 11))


def test_a_session_revocation_refuses_that_session_only() -> None:
    """Revoking one idgate session by its handle leaves the user's other sessions alone; the
    session id itself names nothing (only the handle is ever shown)."""
    view = Revocations(clock=Clock())
    first = record(session_id="session-alice-1", created_at=CREATED_AT + 50)
    view.apply([revocation(RevocationKind.SESSION, first.handle, CREATED_AT)])
    assert view.covers(first)
    assert not view.covers(record(session_id="session-alice-2"))
    by_id = Revocations(clock=Clock())
    by_id.apply([revocation(RevocationKind.SESSION, "session-alice-1", CREATED_AT)])
    assert not by_id.covers(first)


def test_back_channel_kinds_refuse_by_provider_sid_and_subject() -> None:
    """A logout by sid refuses that provider session; by sub, that subject's earlier logins."""
    view = Revocations(clock=Clock())
    view.apply(
        [
            revocation(RevocationKind.SID, "sid-laptop", CREATED_AT),
            revocation(RevocationKind.SUBJECT, "bob-sub", CREATED_AT),
        ]
    )
    assert view.covers(record(provider_sid="sid-laptop", created_at=CREATED_AT + 5))
    assert not view.covers(record(provider_sid="sid-phone"))
    assert view.covers(record(subject="bob-sub", provider_sid=None))
    assert not view.covers(record(subject="bob-sub", provider_sid=None, created_at=CREATED_AT + 1))


def test_a_lift_removes_the_revocation_written_before_it() -> None:
    """Events apply in order: revoke then lift leaves nothing; lift then revoke leaves it."""
    view = Revocations(clock=Clock())
    view.apply(
        [
            revocation(RevocationKind.USER, "alice", CREATED_AT),
            revocation(RevocationKind.USER, "alice", CREATED_AT, lifted=True),
        ]
    )
    assert not view.covers(record())
    view.apply(
        [
            revocation(RevocationKind.USER, "alice", CREATED_AT, lifted=True),
            revocation(RevocationKind.USER, "alice", CREATED_AT),
        ]
    )
    assert view.covers(record())


def test_revocations_expire_and_the_view_stays_bounded() -> None:
    """An entry is dropped at its expiry, and past max_entries the soonest to expire go."""
    clock = Clock()
    view = Revocations(max_entries=3, clock=clock)
    view.apply([revocation(RevocationKind.SESSION, f"s{n}", CREATED_AT + n) for n in range(5)])
    assert len(view) == 3
    assert [entry.value for entry in view.active()] == ["s2", "s3", "s4"]
    clock.now = CREATED_AT + 103
    assert [entry.value for entry in view.active()] == ["s4"]


def test_bearer_tokens_of_a_revoked_user_issued_up_to_the_revocation_are_refused() -> None:
    """`iat` <= revoked_at is refused, a later token is not, a token without `iat` is refused."""
    view = Revocations(clock=Clock())
    view.apply([revocation(RevocationKind.USER, "alice", CREATED_AT)])
    assert view.covers_token(user="alice", issued_at=CREATED_AT - 1)
    assert not view.covers_token(user="alice", issued_at=CREATED_AT + 1)
    assert view.covers_token(user="alice", issued_at=None)
    assert not view.covers_token(user="bob", issued_at=None)


def test_a_back_channel_logout_does_not_refuse_bearer_tokens() -> None:
    """Only an operator's user revocation reaches tokens; a logout by sub ends sessions."""
    view = Revocations(clock=Clock())
    view.apply([revocation(RevocationKind.SUBJECT, "alice", CREATED_AT)])
    assert not view.covers_token(user="alice", issued_at=CREATED_AT - 1)


def test_a_revocation_round_trips_through_its_log_line_and_junk_is_refused() -> None:
    """to_json/from_json keep every field; a malformed line is a RevocationFormatError."""
    entry = revocation(RevocationKind.USER, "alice", CREATED_AT, lifted=True)
    assert Revocation.from_json(entry.to_json()) == entry
    for junk in ("[]", "{}", '{"kind":"nope","value":"a","at":1,"until":2}', "not json"):
        with pytest.raises(RevocationFormatError):
            Revocation.from_json(junk)
    too_long = revocation(RevocationKind.USER, "a" * 1025, CREATED_AT).to_json()
    with pytest.raises(RevocationFormatError):
        Revocation.from_json(too_long)
