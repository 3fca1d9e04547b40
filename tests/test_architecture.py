"""Floors only go down: no package imports one above it, and screen/ has no import circles.

The floors are ARCHITECTURE.md's ("The arrows go one way"). The `ast` of every module under
src/deskloop is walked, so imports inside functions and TYPE_CHECKING blocks count too: a
lazy import is still an arrow (import-linter's "layers" contract, as a small test).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
ROOT = "deskloop"

# Top floor first; a module may import its own floor's packages and the floors below.
FLOORS: tuple[frozenset[str], ...] = (
    frozenset({"cli", "bench", "demo", "config_commands", "__main__", "ui", "scheduler"}),
    frozenset({"agent"}),
    frozenset({"mcp"}),
    frozenset({"tools"}),
    frozenset({"recordings", "routines"}),
    frozenset({"screen", "store", "server"}),
    frozenset({"engines"}),
)
# Loose modules any floor may import; they import only each other ("" is deskloop/__init__).
FOUNDATION = frozenset({"", "errors", "settings", "listening", "command_line"})


@dataclass(frozen=True)
class Import:
    """One arrow: `importer` names `imported` (both deskloop modules) at `line`."""

    importer: str
    imported: str
    line: int
    statement: str

    def __str__(self) -> str:
        words = self.statement if len(self.statement) <= 90 else self.statement[:87] + "..."
        return f"{self.importer} line {self.line}: `{words}`"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SOURCE / ROOT).rglob("*.py"))}


def imports_in(source: str, module: str, is_package: bool, known: set[str]) -> Iterator[Import]:
    """Every deskloop module `source` imports, wherever the import statement sits."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            # `from deskloop.screen import tree` names the submodule, not the package.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        statement = ast.unparse(node)
        for target in dict.fromkeys(targets):
            if target == ROOT or target.startswith(f"{ROOT}."):
                yield Import(module, target, node.lineno, statement)


def all_imports() -> list[Import]:
    modules = source_modules()
    known = set(modules)
    found: list[Import] = []
    for module, path in modules.items():
        source = path.read_text(encoding="utf-8")
        found.extend(imports_in(source, module, path.name == "__init__.py", known))
    return found


def top_name(module: str) -> str:
    """The package or loose module under deskloop that `module` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def floor(module: str) -> int | None:
    """0 for the top floor and up going down; None for the foundation modules."""
    top = top_name(module)
    if top in FOUNDATION:
        return None
    for level, names in enumerate(FLOORS):
        if top in names:
            return level
    raise AssertionError(f"{module} is on no floor: add {top!r} to FLOORS in {__file__}")


def test_every_module_sits_on_a_floor() -> None:
    unplaced = [
        module
        for module in source_modules()
        if top_name(module) not in FOUNDATION and not any(top_name(module) in f for f in FLOORS)
    ]
    assert not unplaced, f"modules on no floor (add them to FLOORS): {unplaced}"


def test_no_package_imports_one_above_it() -> None:
    upward = []
    for arrow in all_imports():
        here, there = floor(arrow.importer), floor(arrow.imported)
        if here is not None and there is not None and there < here:
            upward.append(f"{arrow} imports {top_name(arrow.imported)}/, a floor above")
    assert not upward, "imports that go up a floor:\n" + "\n".join(upward)


def test_foundation_modules_import_only_each_other() -> None:
    outward = [
        f"{arrow} imports {arrow.imported}"
        for arrow in all_imports()
        if floor(arrow.importer) is None and floor(arrow.imported) is not None
    ]
    assert not outward, "foundation modules importing a package:\n" + "\n".join(outward)


def test_the_server_never_imports_the_agent() -> None:
    found = [
        str(arrow)
        for arrow in all_imports()
        if top_name(arrow.importer) == "server" and top_name(arrow.imported) == "agent"
    ]
    assert not found, "server/ imports agent/:\n" + "\n".join(found)


def test_routines_read_only_the_store() -> None:
    found = [
        f"{arrow} imports {arrow.imported}"
        for arrow in all_imports()
        if top_name(arrow.importer) == "routines"
        and top_name(arrow.imported) not in {"routines", "store", *FOUNDATION}
    ]
    assert not found, "routines/ imports more than store/:\n" + "\n".join(found)


def shortest_cycle(start: str, edges: dict[str, dict[str, Import]]) -> list[Import]:
    """The shortest chain of imports from `start` back to itself (empty: none)."""
    came_by: dict[str, Import] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target, arrow in sorted(edges.get(module, {}).items()):
            if target == start:
                chain = [arrow]
                while chain[0].importer != start:
                    chain.insert(0, came_by[chain[0].importer])
                return chain
            if target not in came_by:
                came_by[target] = arrow
                queue.append(target)
    return []


def screen_cycles() -> list[list[Import]]:
    edges: dict[str, dict[str, Import]] = {}
    for arrow in all_imports():
        if top_name(arrow.importer) == top_name(arrow.imported) == "screen":
            edges.setdefault(arrow.importer, {}).setdefault(arrow.imported, arrow)
    cycles: list[list[Import]] = []
    seen: set[str] = set()
    for module in sorted(edges):
        if module in seen:
            continue
        cycle = shortest_cycle(module, edges)
        if cycle:
            seen.update(arrow.importer for arrow in cycle)
            cycles.append(cycle)
    return cycles


def test_screen_modules_import_in_no_circle() -> None:
    circles = [" -> ".join(str(arrow) for arrow in cycle) for cycle in screen_cycles()]
    assert not circles, "import circles in screen/:\n" + "\n".join(circles)


def test_the_walk_sees_lazy_relative_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import json\n"
        "if TYPE_CHECKING:\n"
        "    from deskloop.agent.loop import Loop\n"
        "def later() -> None:\n"
        "    from ..scheduler import runner\n"
        "    from . import contract\n"
        "    import deskloop.store\n"
    )
    known = {"deskloop.scheduler.runner", "deskloop.tools.contract", "deskloop.agent.loop"}
    found = {(i.imported, i.line) for i in imports_in(source, "deskloop.tools.x", False, known)}
    assert found == {
        ("deskloop.agent.loop", 4),
        ("deskloop.scheduler.runner", 6),
        ("deskloop.tools.contract", 7),
        ("deskloop.store", 8),
    }
