"""Modules import in one direction: no two of the package's modules import each other, directly
or around a circle (docs/ARCHITECTURE.md, "A lower layer never imports a higher one").

Every import counts, those under ``TYPE_CHECKING`` and those inside functions included: a circle
that only works because one side imports late is still a circle to the reader."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "auditor"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name for name in names if name in modules)
    return found


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: _imports(path, modules) - {name} for name, path in paths.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# Circles that are known and not yet cut (each imports its partner inside a function): no other
# may appear, and these may only disappear.
KNOWN = [
    ["auditor.backends", "auditor.backends.cloud", "auditor.backends.datacenter"],
    ["auditor.preflight", "auditor.preflight_datacenter"],
    ["auditor.simulator", "auditor.simulator.api", "auditor.simulator.server"],
]


def test_no_new_import_circle():
    cycles = _cycles(_graph())
    assert [cycle for cycle in cycles if cycle not in KNOWN] == []


def test_the_report_sections_and_the_commands_import_in_one_direction():
    cycles = _cycles(_graph())
    involved = {name for cycle in cycles for name in cycle}
    assert not {name for name in involved if name.startswith("auditor.reporting")}
    assert "auditor.cli" not in involved  # auditor.cli <-> auditor.store.cli was cut


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
