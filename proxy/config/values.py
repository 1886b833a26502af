"""Converters from one expanded YAML value to a typed setting, raising InvalidValueError.

A converter never quotes the value it was given, except a name meant to come from a fixed set (an
algorithm): the key path already says which value is meant, and secrets pass through here too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from proxy.config.model import ASYMMETRIC_ALGORITHMS, Secret

E = TypeVar("E", bound=StrEnum)

# RFC 9110 5.6.2: token = 1*tchar; RFC 6265 4.1.1 cookie-name = token (same characters).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+\Z")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# SPIFFE-ID 2.1: a trust domain holds "only lowercase letters, numbers, dots, dashes, and
# underscores"; 2.2: path segments add upper-case letters.
_TRUST_DOMAIN = r"[a-z0-9._-]+"
_SPIFFE_ID = re.compile(rf"spiffe://({_TRUST_DOMAIN})(?:/[A-Za-z0-9._-]+)*\Z")
_SECRET_MIN_LENGTH = 32
_DURATION_EXAMPLES = '"90s", "30m", "12h", "1h30m" or "500ms"'


# bool before int: YAML's true is an int to isinstance.
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "true/false"),
    (int, "a number"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "a mapping"),
)


class InvalidValueError(Exception):
    """The value cannot be used; the message says why and is shown after the key path."""


def type_name(value: object) -> str:
    if value is None:
        return "nothing"
    for kind, name in _TYPE_NAMES:
        if isinstance(value, kind):
            return name
    return f"a YAML {type(value).__name__}"


def text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(f"expected a string, got {type_name(value)}")
    if not value:
        raise InvalidValueError("must not be empty")
    return value


def boolean(value: object) -> bool:
    """true/false, or the strings "true"/"false" (as a `${VAR}` expands to)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidValueError(f"expected true or false, got {type_name(value)}")


def integer(value: object) -> int:
    """An integer, or a string of digits (as a `${VAR}` expands to)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise InvalidValueError(f"expected a whole number, got {type_name(value)}")


def int_between(low: int, high: int | None, *, why: str = "") -> Callable[[object], int]:
    def convert(value: object) -> int:
        number = integer(value)
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise InvalidValueError(f"must be {bounds}{why}")
        return number

    return convert


def choice(enum: type[E]) -> Callable[[object], E]:
    def convert(value: object) -> E:
        name = text(value).lower()
        try:
            return enum(name)
        except ValueError:
            options = ", ".join(member.value for member in enum)
            raise InvalidValueError(f"must be one of: {options}") from None

    return convert


def duration(value: object) -> float:
    """Seconds: a number, or number-unit parts such as "90s", "30m", "1h30m", "500ms"."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidValueError(
            f"expected seconds or a duration such as {_DURATION_EXAMPLES}, got {type_name(value)}"
        )
    if isinstance(value, str):
        spec = value.strip()
        if spec.isascii() and spec.isdigit():
            seconds = float(spec)
        elif _DURATION.match(spec):
            seconds = sum(
                float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(spec)
            )
        else:
            raise InvalidValueError(f"expected seconds or a duration such as {_DURATION_EXAMPLES}")
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidValueError("must be a positive duration")
    return seconds


def duration_at_most(limit: float, *, why: str = "") -> Callable[[object], float]:
    """A `duration` no longer than `limit` seconds; the error shows the limit as a duration."""
    shown = _spoken_duration(limit)

    def convert(value: object) -> float:
        seconds = duration(value)
        if seconds > limit:
            raise InvalidValueError(f"must be at most {shown}{why}")
        return seconds

    return convert


def _spoken_duration(seconds: float) -> str:
    for unit in ("h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def whole_seconds(value: object) -> int:
    seconds = duration(value)
    if not seconds.is_integer():
        raise InvalidValueError("must be a whole number of seconds")
    return int(seconds)


def secret(value: object) -> Secret:
    return Secret(text(value))


def session_secret(value: object) -> Secret:
    key_material = text(value)
    if len(key_material) < _SECRET_MIN_LENGTH:
        raise InvalidValueError(
            f"must be at least {_SECRET_MIN_LENGTH} characters: the session encryption and signing"
            " keys are derived from it (generate one with `openssl rand -base64 32`)"
        )
    return Secret(key_material)


def http_method(value: object) -> str:
    name = text(value).upper()
    if not _TOKEN.match(name):
        raise InvalidValueError("not an HTTP method name")
    return name


def header_name(value: object) -> str:
    name = text(value)
    if not _TOKEN.match(name):
        raise InvalidValueError(
            "a header name is an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~ only"
        )
    return name


def cookie_name(value: object) -> str:
    name = text(value)
    if not _TOKEN.match(name):
        raise InvalidValueError(
            "a cookie name is an RFC 6265 token: letters, digits and !#$%&'*+-.^_`|~ only"
        )
    return name


def scope(value: object) -> str:
    name = text(value)
    if not _SCOPE.match(name):
        raise InvalidValueError('a scope is printable ASCII without spaces, " or \\ (RFC 6749 3.3)')
    return name


def algorithm(value: object) -> str:
    name = text(value)
    if name in ASYMMETRIC_ALGORITHMS:
        return name
    allowed = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
    if name.lower() == "none":
        raise InvalidValueError(
            f"`none` means an unsigned token that anyone can forge; use one of {allowed}"
        )
    if name.upper().startswith("HS"):
        raise InvalidValueError(
            f"{name} is HMAC: the provider's public key would serve as the shared secret, so"
            f" anyone could forge tokens; use one of {allowed}"
        )
    raise InvalidValueError(f"unknown algorithm {name!r}; use one of {allowed}")


def spiffe_id(value: object) -> str:
    name = text(value)
    if not _SPIFFE_ID.match(name):
        raise InvalidValueError("expected a SPIFFE ID such as spiffe://example.org/ns/prod/sa/api")
    return name


def trust_domain_of(spiffe: str) -> str:
    """The trust domain of a SPIFFE ID `spiffe_id` accepted (`example.org` of
    `spiffe://example.org/ns/prod`)."""
    match = _SPIFFE_ID.match(spiffe)
    if match is None:
        raise InvalidValueError("expected a SPIFFE ID such as spiffe://example.org/ns/prod/sa/api")
    return match[1]


def trust_domain(value: object) -> str:
    name = text(value)
    if re.fullmatch(_TRUST_DOMAIN, name) is None:
        raise InvalidValueError(
            "expected a SPIFFE trust domain such as example.org: lower-case letters, digits,"
            " dots, dashes and underscores, without spiffe:// or a path"
        )
    return name


def claim_value(value: object) -> str:
    if isinstance(value, bool | int | float):
        raise InvalidValueError('claims are compared as strings: quote the value ("true", "42")')
    return text(value)
