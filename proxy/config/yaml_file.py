"""Reading the configuration file: YAML's safe subset, and a key written twice is an error."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from proxy.config.issues import ConfigError, ConfigIssue

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """`yaml.safe_load`'s loader, noting duplicate keys instead of silently keeping the last one."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.value in seen:
                line = key_node.start_mark.line + 1
                self.duplicates.append(f"line {line}: key {key_node.value!r} is written twice")
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> object:
    """The parsed document; ConfigError (at the file name) when it cannot be read or parsed."""
    name = str(path)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError((ConfigIssue(path=name, message="not UTF-8 text"),)) from None
    except OSError as error:
        message = f"cannot read: {error.strerror or type(error).__name__}"
        raise ConfigError((ConfigIssue(path=name, message=message),)) from None
    loader = _Loader(source)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as error:
        raise ConfigError((ConfigIssue(path=name, message=_describe(error)),)) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(tuple(ConfigIssue(path=name, message=m) for m in loader.duplicates))
    return document


def _describe(error: yaml.YAMLError) -> str:
    # Only the problem and its position: str(error) quotes the offending source line, which may
    # hold a secret.
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return "not valid YAML"
