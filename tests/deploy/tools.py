"""The validators these tests run: promtool from Debian, the rest from PyPI (dev dependencies).

A validator that is missing skips its test with the reason, and fails it under
IDGATE_E2E=required (CI), as every external program does (tests/e2e/tools.py).
"""

from __future__ import annotations

import subprocess
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from tests.e2e.tools import require_tool

TIMEOUT_SECONDS: Final = 120.0


def tool(name: str, install: str) -> str:
    """Path of a validator: this environment's scripts first (the virtualenv), then PATH.

    `install` says how to get it, for the skip or failure message.
    """
    in_environment = Path(sysconfig.get_path("scripts")) / name
    if in_environment.exists():
        return str(in_environment)
    return require_tool(name, install)


def run(command: Sequence[str], *, cwd: Path | None = None) -> str:
    """Run a validator; its output when it exits 0, else the test fails showing that output."""
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output}"
    return output
