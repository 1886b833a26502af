"""Step-up: whether the sign-in behind an identity is as recent and as strong as a route asks.

Only verified claims are read (the ID token of a session's sign-in, a bearer token's own claims):
the `max_age` and `acr_values` idgate sends to the provider travel in a URL the user can edit,
so what was asked proves nothing; what the provider signed does.
"""

from __future__ import annotations

from enum import StrEnum

from proxy.config.model import StepUp
from proxy.identity.principal import SignIn


class Unmet(StrEnum):
    """The requirement a sign-in fails; the `matched` field of the decision that says so."""

    MAX_AGE = "max_age"
    ACR = "acr"
    AMR = "amr"


def unmet(step_up: StepUp, sign_in: SignIn, *, now: float) -> Unmet | None:
    """The first requirement of `step_up` that `sign_in` does not meet; None when it meets all."""
    max_age = step_up.max_age_seconds
    # OIDC Core 3.1.2.1 max_age: "the allowable elapsed time in seconds since the last time the
    # End-User was actively authenticated by the OP"; OIDC Core 2: auth_time is "REQUIRED" when
    # max_age was requested. Without it, the sign-in's age is unknown: too old.
    if max_age is not None and (sign_in.auth_time is None or now - sign_in.auth_time > max_age):
        return Unmet.MAX_AGE
    # OIDC Core 5.5.1.1: acr is a voluntary claim the provider may answer with any value, even
    # when acr_values asked for others; only a value the route lists counts.
    if step_up.acr_values and sign_in.acr not in step_up.acr_values:
        return Unmet.ACR
    if step_up.amr and not step_up.amr & sign_in.amr:
        return Unmet.AMR
    return None
