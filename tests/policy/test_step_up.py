"""Step-up checks: max_age against auth_time, acr against acr_values, amr against amr, and how
an unmet step-up shows in the policy decision."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from proxy.config.model import Policy, PolicyMode, Route, Rule, StepUp
from proxy.identity.claims import sign_in_from_claims
from proxy.identity.principal import NO_SIGN_IN, CredentialSource, Principal, SignIn
from proxy.policy.decision import Outcome
from proxy.policy.evaluate import evaluate
from proxy.policy.step_up import Unmet, unmet
from proxy.reasons import Reason

NOW = 1_800_000_000.0
MFA = "urn:idgate:mfa"


@pytest.mark.parametrize(
    ("step_up", "sign_in", "expected"),
    [
        (StepUp(max_age_seconds=60), SignIn(auth_time=NOW - 60), None),
        (StepUp(max_age_seconds=60), SignIn(auth_time=NOW - 61), Unmet.MAX_AGE),
        (StepUp(max_age_seconds=60), SignIn(auth_time=NOW - 120, acr=MFA), Unmet.MAX_AGE),
        (StepUp(max_age_seconds=60), NO_SIGN_IN, Unmet.MAX_AGE),
        (StepUp(acr_values=(MFA, "urn:hwk")), SignIn(acr="urn:hwk"), None),
        (StepUp(acr_values=(MFA,)), SignIn(acr="urn:pwd"), Unmet.ACR),
        (StepUp(acr_values=(MFA,)), NO_SIGN_IN, Unmet.ACR),
        (StepUp(amr=frozenset({"otp", "hwk"})), SignIn(amr=frozenset({"pwd", "otp"})), None),
        (StepUp(amr=frozenset({"otp"})), SignIn(amr=frozenset({"pwd"})), Unmet.AMR),
        (
            StepUp(max_age_seconds=60, acr_values=(MFA,), amr=frozenset({"otp"})),
            SignIn(auth_time=NOW, acr=MFA, amr=frozenset({"otp"})),
            None,
        ),
    ],
)
def test_unmet_names_the_first_failed_requirement(
    step_up: StepUp, sign_in: SignIn, expected: Unmet | None
) -> None:
    """A sign-in meets a step-up only when every requirement it names holds."""
    assert unmet(step_up, sign_in, now=NOW) is expected


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (
            {"auth_time": 5, "acr": MFA, "amr": ["pwd", "otp"]},
            SignIn(auth_time=5.0, acr=MFA, amr=frozenset({"pwd", "otp"})),
        ),
        ({"auth_time": "5", "acr": 1, "amr": "otp"}, NO_SIGN_IN),
        ({"auth_time": True, "acr": "", "amr": [1, "otp"]}, SignIn(amr=frozenset({"otp"}))),
        ({"auth_time": float("nan")}, NO_SIGN_IN),
        ({}, NO_SIGN_IN),
    ],
)
def test_sign_in_claims_of_the_wrong_type_count_as_absent(
    claims: dict[str, object], expected: SignIn
) -> None:
    """auth_time must be a number, acr a non-empty string, amr an array of strings."""
    assert sign_in_from_claims(claims) == expected


def principal(sign_in: SignIn, *, groups: frozenset[str] = frozenset()) -> Principal:
    return Principal(
        user="alice",
        email=None,
        groups=groups,
        claims=MappingProxyType({}),
        source=CredentialSource.SESSION,
        expires_at=2e9,
        sign_in=sign_in,
    )


def vault(*, mode: PolicyMode = PolicyMode.ENFORCE) -> Route:
    return Route(
        name="vault",
        policy=Policy(
            allow=Rule(groups=frozenset({"admins"})),
            deny=Rule(users=frozenset({"mallory"})),
            mode=mode,
        ),
        step_up=StepUp(max_age_seconds=60),
    )


def test_an_unmet_step_up_is_unauthenticated() -> None:
    """An allowed identity with too old a sign-in is unauthenticated, reason step_up."""
    decision = evaluate(
        vault(), principal(SignIn(auth_time=NOW - 120), groups=frozenset({"admins"})), now=NOW
    )
    assert (decision.outcome, decision.reason, decision.matched) == (
        Outcome.UNAUTHENTICATED,
        Reason.STEP_UP,
        "step_up:max_age",
    )


def test_a_met_step_up_allows_as_the_rule_says() -> None:
    """A recent enough sign-in is allowed with the allow rule's reason."""
    decision = evaluate(
        vault(), principal(SignIn(auth_time=NOW - 5), groups=frozenset({"admins"})), now=NOW
    )
    assert (decision.outcome, decision.reason) == (Outcome.ALLOW, Reason.GROUP)


def test_a_denied_identity_is_denied_before_any_step_up() -> None:
    """Signing in again cannot help someone the policy refuses: 403, not a step-up."""
    decision = evaluate(vault(), principal(NO_SIGN_IN), now=NOW)
    assert (decision.outcome, decision.reason) == (Outcome.DENY, Reason.NOT_ALLOWED)


def test_audit_mode_does_not_waive_the_step_up() -> None:
    """Audit mode relaxes allow and deny only: an unmet step-up stays unauthenticated."""
    decision = evaluate(
        vault(mode=PolicyMode.AUDIT),
        principal(SignIn(auth_time=NOW - 120), groups=frozenset({"admins"})),
        now=NOW,
    )
    assert decision.outcome is Outcome.UNAUTHENTICATED
