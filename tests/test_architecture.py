"""The shape of the code: the import-linter contracts of pyproject.toml hold, and no modules
import each other (no import cycle, counting imports made only for type checking)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_another_that_imports_it_back() -> None:
    graph = grimp.build_graph("lifecycle_es")
    assert cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.c", imported="p.a")
    assert cycles(graph) == [["p.a", "p.b"]]


def test_import_contracts_hold() -> None:
    done = subprocess.run([sys.executable, "-m", "importlinter.cli", "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]


def test_only_entrypoints_import_the_engine() -> None:
    """Nothing below the CLI, the web console, the report and the demo imports the
    composition root."""
    graph = grimp.build_graph("lifecycle_es")
    importers = graph.find_modules_that_directly_import("lifecycle_es.engine")
    entry = ("lifecycle_es.cli.", "lifecycle_es.web.", "lifecycle_es.report")
    assert sorted(m for m in importers if not m.startswith(entry)) == [
        "lifecycle_es", "lifecycle_es.demo"]


def test_the_cli_starts_without_the_postgresql_driver() -> None:
    """Every CLI call pays for what ``lifecycle-es`` imports at start: the PostgreSQL driver
    (about 0.15 s) is imported only when a PostgreSQL store is opened."""
    import subprocess
    import sys

    probe = ("import sys, lifecycle_es.cli.main, lifecycle_es.engine; "
             "print(sorted(m for m in ('psycopg', 'eventsourcing.postgres') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
