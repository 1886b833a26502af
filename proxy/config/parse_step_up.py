"""A route's `step_up`: `max_age`, `acr_values` and `amr`, the sign-in the route requires."""

from __future__ import annotations

from proxy.config.model import StepUp
from proxy.config.reader import Section, given
from proxy.config.values import InvalidValueError, text, whole_seconds

_KEYS = ("max_age", "acr_values", "amr")


def parse_step_up(route: Section, *, public: bool) -> StepUp | None:
    if not route.has("step_up"):
        return None
    block = route.section("step_up")
    acr_values = block.get_list("acr_values", space_free)
    amr = block.get_list("amr", space_free)
    step_up = StepUp(
        **given(
            max_age_seconds=block.get("max_age", whole_seconds),
            acr_values=None if acr_values is None else tuple(dict.fromkeys(acr_values)),
            amr=None if amr is None else frozenset(amr),
        )
    )
    block.close()
    if not any(block.has(key) for key in _KEYS):
        block.issue(f"names no requirement: give at least one of {', '.join(_KEYS)}")
    if public:
        route.issue("cannot be combined with public: true: nobody signs in there", key="step_up")
    return step_up


def space_free(value: object) -> str:
    """An `acr` or `amr` value: `acr_values` is sent space-separated (OIDC Core 3.1.2.1) and
    quoted in RFC 9470's `WWW-Authenticate` challenge, so printable ASCII without spaces or
    quotes."""
    name = text(value)
    if not all("!" <= c <= "~" and c not in '"\\' for c in name):
        raise InvalidValueError("use printable ASCII without spaces, quotes or backslashes")
    return name
