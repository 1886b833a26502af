"""Every module imports cleanly on its own, with warnings as errors and no side effects."""

from __future__ import annotations

import pkgutil

import pytest

import proxy
from tests.support.python_process import run_python

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(proxy.__path__, prefix="proxy.")
    if info.name != "proxy.__main__"
)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_without_warnings(module: str) -> None:
    """A module imported alone under -W error emits no warning and starts nothing."""
    result = run_python(f"import {module}")
    assert result.returncode == 0, result.stderr
