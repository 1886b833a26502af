"""Every module imports cleanly on its own, with warnings as errors and no side effects."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import proxy

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(proxy.__path__, prefix="proxy.")
    if info.name != "proxy.__main__"
)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_without_warnings(module: str) -> None:
    """A module imported alone under -W error emits no warning and starts nothing."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
