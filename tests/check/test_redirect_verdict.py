"""How `idgate check --online` reads an authorization endpoint's first answer (providers without
PAR; tests/e2e/test_check_online.py runs the whole check against the real provider)."""

from __future__ import annotations

from typing import Final

import pytest

from proxy.check.findings import Outcome
from proxy.check.provider import redirect_verdict
from tests.support.settings import make_settings

SETTINGS: Final = make_settings("https://login.example.com", "http://127.0.0.1:9")
CALLBACK: Final = SETTINGS.redirect_uri


@pytest.mark.parametrize(
    ("status", "location", "outcome", "says"),
    [
        (302, "https://login.example.com/login?x=1", Outcome.OK, "goes on to its login"),
        (303, f"{CALLBACK}?error=invalid_scope&state=s", Outcome.FAILED, "invalid_scope"),
        (400, "", Outcome.FAILED, f"register {CALLBACK}"),
        (200, "", Outcome.UNCHECKED, "sign in once in a browser"),
        (502, "", Outcome.FAILED, "HTTP 502"),
    ],
)
def test_the_first_answer_decides_the_redirect_uri_line(
    status: int, location: str, outcome: Outcome, says: str
) -> None:
    """A redirect onward passes; a redirect back with an error, or a 4xx or 5xx, fails; a page
    (HTTP 200, a login or an error, cannot tell) is reported unchecked."""
    found, detail = redirect_verdict(SETTINGS, status, location)

    assert found is outcome
    assert says in detail
