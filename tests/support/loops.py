"""Running an async test on each event loop idgate may run on: asyncio's own and uvloop's.

Production runs uvloop (proxy/server/run.py); its transports differ from asyncio's (they are not
asyncio.Transport subclasses, and pause, reset and end of stream take other code paths), and
pytest-asyncio runs every test on one loop only.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def run_on(loop: str, scenario: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(scenario)


def on_each_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """The async `test`, as a test run once on each of LOOPS; its own parameters (fixtures,
    parametrize arguments) are kept."""

    def run(*args: Any, loop: str, **kwargs: Any) -> None:
        run_on(loop, test(*args, **kwargs))

    signature = inspect.signature(test)
    loop_parameter = inspect.Parameter("loop", inspect.Parameter.KEYWORD_ONLY, annotation=str)
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), loop_parameter]
    )
    run.__name__ = test.__name__
    run.__qualname__ = test.__qualname__
    run.__doc__ = test.__doc__
    parametrized: Callable[..., None] = pytest.mark.parametrize("loop", LOOPS)(run)
    return parametrized
