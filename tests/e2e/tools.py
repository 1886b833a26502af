"""Finding the real programs end-to-end tests drive, and what to do when one is missing.

A missing tool skips a test with the reason, unless IDGATE_E2E=required (CI), where it fails: a
machine that cannot run the end-to-end suite must not pass by skipping all of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

E2E_REQUIRED = os.environ.get("IDGATE_E2E") == "required"
#: The resource the test provider issues access tokens for, and idgate's accepted audience.
API_AUDIENCE = "https://api.idgate.test"


def require_tool(name_or_path: str, reason: str) -> str:
    """Path of a program on PATH (or of a given path); skip, or fail under IDGATE_E2E=required."""
    if os.sep in name_or_path:
        found = name_or_path if Path(name_or_path).exists() else None
    else:
        found = shutil.which(name_or_path)
    if found is None:
        message = f"{name_or_path} not found: {reason}"
        if E2E_REQUIRED:
            pytest.fail(f"{message} (IDGATE_E2E=required)", pytrace=False)
        pytest.skip(message)
    return found


def stop_process(process: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after `timeout`; closes its pipes; the exit code (idempotent)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    return process.returncode
