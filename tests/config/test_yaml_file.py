"""Reading the YAML file: problems reported at the file name, never quoting the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config.load import ConfigError, load_settings
from proxy.config.yaml_file import read_yaml


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    return [str(issue) for issue in caught.value.issues]


def test_missing_file_is_an_issue_at_its_name(tmp_path: Path) -> None:
    """A file that does not exist is one issue naming the file and the reason."""
    path = tmp_path / "absent.yaml"

    assert issues_of(path) == [f"{path}: cannot read: No such file or directory"]


def test_non_utf8_file_is_an_issue(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is refused with that reason."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"public_url: caf\xe9\n")

    assert issues_of(path) == [f"{path}: not UTF-8 text"]


def test_syntax_error_gives_its_position_without_the_source_line(tmp_path: Path) -> None:
    """A YAML syntax error names line and column but never echoes the (maybe secret) line."""
    path = tmp_path / "broken.yaml"
    path.write_text("session:\n  secret: hunter2-secret: [\n", encoding="utf-8")

    (reported,) = issues_of(path)

    assert reported.startswith(f"{path}: line 2, column ")
    assert "hunter2" not in reported


def test_duplicate_keys_are_issues_not_silently_overwritten(tmp_path: Path) -> None:
    """A key written twice in one mapping is reported with its line; YAML would keep the last."""
    path = tmp_path / "twice.yaml"
    path.write_text(
        "routes:\n"
        "  - name: admin\n"
        "    deny: {groups: [contractors]}\n"
        "    deny: {groups: [interns]}\n"
        "    allow: {groups: [staff]}\n",
        encoding="utf-8",
    )

    assert issues_of(path) == [f"{path}: line 4: key 'deny' is written twice"]


def test_merge_keys_and_anchors_still_work(tmp_path: Path) -> None:
    """YAML anchors and `<<` merges are allowed; overriding a merged key is not a duplicate."""
    path = tmp_path / "merge.yaml"
    path.write_text(
        "base: &base {host: a.example.com, public: true}\n"
        "route: {<<: *base, host: b.example.com}\n",
        encoding="utf-8",
    )

    assert read_yaml(path) == {
        "base": {"host": "a.example.com", "public": True},
        "route": {"host": "b.example.com", "public": True},
    }


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    """Only YAML's safe subset loads: a Python object tag is a syntax-level issue."""
    path = tmp_path / "unsafe.yaml"
    path.write_text("x: !!python/object/apply:os.system ['true']\n", encoding="utf-8")

    (reported,) = issues_of(path)

    assert reported.startswith(f"{path}: line 1, column 4: ")
