"""The login state carries what a step-up sign-in asked for, sealed, back to the callback."""

from __future__ import annotations

from proxy.config.model import Secret, StepUp
from proxy.sessions.login_state import LoginStates
from tests.support.settings import SESSION_SECRET

STATE = "s" * 43


def states() -> LoginStates:
    return LoginStates([Secret(SESSION_SECRET)], cookie_prefix="__Secure-_idgate_state_")


def test_the_step_up_travels_sealed_to_the_callback() -> None:
    """A step-up given at begin comes back unchanged at finish; none stays none."""
    login_states = states()
    step_up = StepUp(max_age_seconds=60, acr_values=("urn:mfa", "urn:hwk"), amr=frozenset({"otp"}))
    for asked in (step_up, None):
        state = STATE if asked else "t" * 43
        cookie = login_states.begin(
            state=state, nonce="n", code_verifier="v", redirect_to="/vault", step_up=asked
        )
        assert cookie.value is not None
        assert b"urn:mfa" not in cookie.value.encode()
        login, _ = login_states.finish(state, {cookie.name: cookie.value})
        assert login.step_up == asked
