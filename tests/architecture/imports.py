"""idgate's own import graph, read from the source: which proxy module imports which."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import proxy

ROOT = Path(proxy.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _imported(tree: ast.AST) -> Iterator[str]:
    """Every module named by an import anywhere in the file (inside functions and
    `if TYPE_CHECKING:` too: a lazy import is still a dependency)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """proxy module -> the proxy modules it imports (packages' `__init__` included)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {
            target
            for target in _imported(ast.parse(path.read_text(), str(path)))
            if target in known and target != name
        }
        graph[name] = targets
    return graph


def third_party_imports(name: str) -> set[str]:
    """The top-level names of every module `name` imports."""
    path = modules()[name]
    return {target.split(".")[0] for target in _imported(ast.parse(path.read_text(), str(path)))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    visiting: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*visiting[visiting.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        visiting.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None
