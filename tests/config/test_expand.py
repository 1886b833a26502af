"""`${VAR}` expansion of single strings: shell-like defaults, escapes, and no recursion."""

from __future__ import annotations

import pytest

from proxy.config.expand import ExpansionError, expand

ENVIRON = {"HOST": "example.com", "EMPTY": "", "NESTED": "${HOST}"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${HOST}", "example.com"),
        ("https://${HOST}/x", "https://example.com/x"),
        ("${HOST}${HOST}", "example.comexample.com"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${HOST:-fallback}", "example.com"),
        ("${MISSING:-}", ""),
        ("${EMPTY}", ""),
        ("${MISSING:-a:-b}", "a:-b"),
        ("$${HOST}", "${HOST}"),
        ("cost: $5 and $$", "cost: $5 and $$"),
        ("$HOST", "$HOST"),
        ("${NESTED}", "${HOST}"),
    ],
)
def test_references_expand_like_the_shell(text: str, expected: str) -> None:
    """`${VAR}`, `${VAR:-default}` (unset or empty) and `$${` behave as documented."""
    assert expand(text, ENVIRON) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "environment variable MISSING is not set"),
        ("${A} and ${B}", "environment variable A is not set; environment variable B is not set"),
        ("${HOST", "`${` without a closing `}`"),
        ("${1ABC}", "malformed `${...}`"),
        ("${}", "malformed `${...}`"),
        ("${HOST-x}", "malformed `${...}`"),
    ],
)
def test_bad_references_are_errors_naming_the_variable(text: str, message: str) -> None:
    """Unset variables and malformed references fail with every problem named."""
    with pytest.raises(ExpansionError) as caught:
        expand(text, ENVIRON)

    assert str(caught.value).startswith(message)


def test_error_never_contains_a_value_or_default() -> None:
    """A malformed reference's message does not quote its body, which may hold a default secret."""
    with pytest.raises(ExpansionError) as caught:
        expand("${9SECRET:-hunter2}", {})

    assert "hunter2" not in str(caught.value)
