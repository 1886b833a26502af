"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from proxy.runtime import Runtime
from tests.support.context import started_runtime


@pytest.fixture(autouse=True)
def _no_idgate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own IDGATE_* variables must never change what a test sees."""
    for name in [
        name for name in os.environ if name.startswith("IDGATE_") and name != "IDGATE_E2E"
    ]:
        monkeypatch.delenv(name)


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    """A started Runtime for the standard test settings (no provider reachable)."""
    async with started_runtime() as built:
        yield built
