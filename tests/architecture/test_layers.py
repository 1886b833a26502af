"""The shape of the package: no import cycle, no package importing a higher layer, pure cores."""

from __future__ import annotations

import subprocess
import sys
from typing import Final

from tests.architecture.imports import (
    ROOT,
    find_cycle,
    import_graph,
    modules,
    third_party_imports,
)

#: Lowest first. A module may import its own package and anything in a lower layer, never above.
LAYERS: Final = (
    ("proxy.reasons", "proxy.errors", "proxy.config", "proxy.keyderive", "proxy.drain"),
    ("proxy.upstream", "proxy.observability", "proxy.oidc", "proxy.certfiles"),
    ("proxy.identity",),
    ("proxy.policy", "proxy.sessions"),
    ("proxy.runtime",),
    ("proxy.stages",),
    ("proxy.forward", "proxy.endpoints"),
    ("proxy.server",),
    ("proxy.explain", "proxy.demo", "proxy.render", "proxy.check"),
    ("proxy.cli", "proxy.__main__"),
)

#: Modules whose logic must run without a server (`idgate explain`, unit tests, other tools).
PURE: Final = (
    "proxy.reasons",
    "proxy.errors",
    "proxy.policy",
    "proxy.identity",
    "proxy.upstream",
    "proxy.stages.paths",
    "proxy.stages.header_names",
    "proxy.endpoints.redirects",
    "proxy.endpoints.own_paths",
    "proxy.forward.headers",
    "proxy.forward.identity_headers",
)


def _unit(module: str) -> str:
    """The layered unit a module belongs to: its top package, or a top-level module itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _layer(module: str) -> int:
    unit = _unit(module)
    for index, names in enumerate(LAYERS):
        if unit in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def test_importing_proxy_meets_no_cycle() -> None:
    """No chain of imports inside proxy/ leads back to where it started."""
    assert find_cycle(import_graph()) is None


def test_no_module_imports_a_higher_layer() -> None:
    """Dependencies point down: domain packages know nothing of stages, stages nothing of the
    server; within one layer, packages do not import each other in a circle."""
    graph = import_graph()
    upward = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module != "proxy"
        for target in targets
        if target != "proxy" and _layer(target) > _layer(module)
    ]
    assert upward == []
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            if module != "proxy" and target != "proxy" and _unit(module) != _unit(target):
                units.setdefault(_unit(module), set()).add(_unit(target))
    assert find_cycle(units) is None


def _pure_modules() -> list[str]:
    return sorted(
        name
        for name in modules()
        if any(name == pure or name.startswith(f"{pure}.") for pure in PURE)
    )


def test_pure_modules_import_no_aiohttp_themselves() -> None:
    """No pure module names aiohttp in an import of its own."""
    assert [name for name in _pure_modules() if "aiohttp" in third_party_imports(name)] == []


def test_pure_modules_pull_in_no_aiohttp() -> None:
    """The pure cores (policy, paths, redirects, headers, errors, identity, upstream) and
    `idgate explain` load without aiohttp, not even through what they import."""
    program = (
        "import importlib, sys\n"
        f"for name in {[*_pure_modules(), 'proxy.explain']!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_top_of_the_package_stays_small() -> None:
    """The top of proxy/ keeps only the package face, the CLI, explain and true leaves."""
    top = sorted(path.name for path in ROOT.glob("*.py"))
    assert len(top) <= 10, top


def test_importing_proxy_alone_starts_nothing() -> None:
    """`python -c "import proxy"` imports no submodule (so no cycle can hide behind it)."""
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            "import sys, proxy; print(sorted(m for m in sys.modules if m.startswith('proxy.')))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
