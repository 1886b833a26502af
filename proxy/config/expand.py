"""`${VAR}` expansion of one configuration string.

It runs on values after YAML parsing, never on the YAML source, so a variable's value is always
one plain string: it cannot add keys, lists or another `${...}` reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?\Z", re.DOTALL)


class ExpansionError(Exception):
    """A reference that cannot be expanded; the message names variables, never their values."""


def expand(text: str, environ: Mapping[str, str]) -> str:
    """`text` with `${VAR}` and `${VAR:-default}` replaced and `$${` turned into a literal `${`.

    As in the shell, the default applies when the variable is unset or empty.
    """
    if "${" not in text:
        return text
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group("body")
        if body is None:
            problems.append("`${` without a closing `}` (write `$${` for a literal `${`)")
            return ""
        reference = _BODY.match(body)
        if reference is None:
            problems.append(
                "malformed `${...}`: expected ${NAME} or ${NAME:-default}, where NAME is letters,"
                " digits and _ and does not start with a digit"
            )
            return ""
        name, default = reference.group("name"), reference.group("default")
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            problems.append(f"environment variable {name} is not set")
            return ""
        return value

    expanded = _REFERENCE.sub(replace, text)
    if problems:
        raise ExpansionError("; ".join(problems))
    return expanded
