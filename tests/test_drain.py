"""The drain state: requests in flight per connection, tunnels apart, and the signal to go away."""

from __future__ import annotations

from proxy.drain import Drain


def test_a_connection_is_busy_while_its_request_is_in_flight() -> None:
    """Requests in flight are counted by connection, and a connection is busy until its
    request ends."""
    state = Drain()
    first, second = object(), object()
    state.request_started(first)
    state.request_started(second)

    assert state.requests == 2
    state.request_ended(first)
    assert (state.busy(first), state.busy(second)) == (False, True)
    state.request_ended(second)
    assert (state.requests, state.busy(second)) == (0, False)


def test_a_tunnel_is_not_a_request_in_flight_but_keeps_its_connection_busy() -> None:
    """While a request is a tunnel it counts as a tunnel, not a request, and its connection is
    still busy; when the tunnel ends the request's own end balances the count."""
    state = Drain()
    connection = object()
    state.request_started(connection)

    with state.tunnel(connection) as going_away:
        assert (state.requests, state.tunnels) == (0, 1)
        assert state.busy(connection)
        assert state.is_tunnel(connection)
        assert not going_away.is_set()
    state.request_ended(connection)

    assert (state.requests, state.tunnels, state.busy(connection)) == (0, 0, False)


def test_closing_tunnels_signals_every_open_one_and_any_opened_later() -> None:
    """`close_tunnels` sets each open tunnel's event and says how many there were; a tunnel
    opened afterwards is told to go away at once."""
    state = Drain()
    open_one, later_one = object(), object()
    state.request_started(open_one)
    state.request_started(later_one)

    with state.tunnel(open_one) as going_away:
        assert state.close_tunnels() == 1
        assert going_away.is_set()
    with state.tunnel(later_one) as later:
        assert later.is_set()


def test_draining_starts_false_and_begins_once() -> None:
    """A new Drain is not draining; `begin` makes it so."""
    state = Drain()
    assert not state.draining
    state.begin()
    assert state.draining
