"""Run Python code in a fresh interpreter, warnings as errors: what a module does on import, or
without a package, cannot leak in from the test process."""

from __future__ import annotations

import subprocess
import sys


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """`python -W error -c code`, its output captured as text; the caller checks the result."""
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
