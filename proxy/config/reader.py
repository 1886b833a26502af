"""Reading one YAML mapping at a time: typed values, every problem recorded with its key path.

A getter returns None for a key that is absent, null, or invalid (the problem is recorded); the
caller leaves the model's default in place. Anything built after a problem is thrown away, because
`parse_settings` raises as soon as it has finished reading if any problem was recorded.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from proxy.config.addresses import redis_url
from proxy.config.expand import ExpansionError, expand
from proxy.config.issues import ConfigIssue, item_path, key_path
from proxy.config.values import InvalidValueError, secret, session_secret, type_name

T = TypeVar("T")


#: Converters of secret values, each with what stands in for the value when secrets are not read
#: (one its own check accepts). A Redis URL counts: it may carry a password.
_SECRET_STAND_INS: Final[dict[Callable[[object], object], str]] = {
    secret: "unread",
    session_secret: "unread-" * 8,
    redis_url: "redis://unread.invalid",
}


class Context:
    """What every section shares: the environment for `${VAR}` and the list of problems."""

    def __init__(self, environ: Mapping[str, str], *, read_secrets: bool = True) -> None:
        self.environ = environ
        self.read_secrets = read_secrets
        """False for a command that never uses a secret (`idgate explain`): secret values are
        neither expanded nor checked, so their variables need not be set."""
        self.issues: list[ConfigIssue] = []

    def report(self, path: str, message: str) -> None:
        self.issues.append(ConfigIssue(path=path, message=message))

    def convert(self, raw: object, path: str, convert: Callable[[object], T]) -> T | None:
        """`raw` expanded (when a string) and converted, or None with the problem recorded."""
        if not self.read_secrets and convert in _SECRET_STAND_INS:
            return convert(_SECRET_STAND_INS[convert])
        try:
            return convert(expand(raw, self.environ) if isinstance(raw, str) else raw)
        except (ExpansionError, InvalidValueError) as problem:
            self.report(path, str(problem))
            return None


class Section:
    """One mapping of the document; `close()` reports every key no getter asked for."""

    def __init__(self, context: Context, path: str, data: object) -> None:
        self.context = context
        self.path = path
        self._data: dict[str, object] = {}
        self._asked: set[str] = set()
        if data is None:
            return
        if not isinstance(data, Mapping):
            context.report(path, f"expected a mapping of keys to values, got {type_name(data)}")
            return
        for key, value in data.items():
            if isinstance(key, str):
                self._data[key] = value
            elif isinstance(key, bool):
                context.report(
                    path,
                    'a key written on/off/yes/no is read by YAML as true/false: quote it ("on")',
                )
            else:
                context.report(path, f"keys must be strings, got {type_name(key)}")

    def present_keys(self) -> tuple[str, ...]:
        return tuple(self._data)

    def has(self, key: str) -> bool:
        """Whether the key is written at all, even with an empty value."""
        self._asked.add(key)
        return key in self._data

    def peek(self, key: str) -> object:
        """The value as written (None when absent or null), before expansion."""
        return self._data.get(key)

    def issue(self, message: str, *, key: str | None = None) -> None:
        self.context.report(self.path if key is None else key_path(self.path, key), message)

    def get(self, key: str, convert: Callable[[object], T], *, required: bool = False) -> T | None:
        raw = self._take(key, required=required)
        return None if raw is None else self.context.convert(raw, key_path(self.path, key), convert)

    def get_list(
        self,
        key: str,
        convert: Callable[[object], T],
        *,
        single: bool = False,
        required: bool = False,
    ) -> tuple[T, ...] | None:
        """A non-empty list, each item converted; with `single`, one bare value is a list of one."""
        raw = self._take(key, required=required)
        if raw is None:
            return None
        path = key_path(self.path, key)
        if single and not isinstance(raw, list):
            value = self.context.convert(raw, path, convert)
            return None if value is None else (value,)
        if not isinstance(raw, list):
            self.context.report(path, f"must be a list of strings, got {type_name(raw)}")
            return None
        if not raw:
            self.context.report(path, "must not be empty")
            return None
        converted = [
            self.context.convert(item, item_path(path, index), convert)
            for index, item in enumerate(raw)
        ]
        return tuple(value for value in converted if value is not None)

    def section(self, key: str) -> Section:
        """The nested mapping (an empty one when the key is absent, so its required keys report)."""
        return Section(self.context, key_path(self.path, key), self._take(key, required=False))

    def sections(self, key: str, *, required: bool = False) -> list[Section] | None:
        """A list of mappings, such as `routes`; None when absent or not a list."""
        raw = self._take(key, required=required)
        if raw is None:
            return None
        path = key_path(self.path, key)
        if not isinstance(raw, list):
            self.context.report(path, f"must be a list of mappings, got {type_name(raw)}")
            return None
        return [Section(self.context, item_path(path, i), item) for i, item in enumerate(raw)]

    def close(self) -> None:
        for key in [key for key in self._data if key not in self._asked]:
            close = difflib.get_close_matches(key, self._asked, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            self.issue(f"unknown key{hint}", key=key)

    def _take(self, key: str, *, required: bool) -> object:
        self._asked.add(key)
        raw = self._data.get(key)
        if raw is None and required:
            self.issue("required", key=key)
        return raw


def given(**values: Any) -> dict[str, Any]:
    """The keyword arguments that were set, so the model, not the loader, supplies every default."""
    return {name: value for name, value in values.items() if value is not None}
