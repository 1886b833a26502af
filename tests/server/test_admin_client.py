"""What `idgate sessions` prints of each session the admin listener returns."""

from __future__ import annotations

from proxy.server.admin_client import session_line


def test_a_session_line_is_tab_separated_and_printable_whatever_the_listener_sent() -> None:
    """Times in ISO 8601 UTC, the state in words, and no control character from the answer (a
    user agent or address written into Redis by anyone) reaches the operator's terminal."""
    entry = {
        "handle": "ab" * 32,
        "created_at": 1_795_492_200,
        "last_seen_at": 1_795_492_800.5,
        "client": "203.0.113.7\x1b]0;owned\x07",
        "user_agent": "Agent\x1b[2J\r\n",
        "revoked": True,
    }
    assert session_line(entry).split("\t") == [
        "ab" * 32,
        "created 2026-11-24T03:50:00+00:00",
        "last seen 2026-11-24T04:00:00+00:00",
        "client 203.0.113.7?]0;owned?",
        "agent Agent?[2J??",
        "revoked",
    ]
    assert session_line({"handle": "cd" * 32, "user_agent": None}).split("\t")[3:] == [
        "client -",
        "agent -",
        "live",
    ]
