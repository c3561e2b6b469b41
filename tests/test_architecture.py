"""The shape of the code: the import-linter contracts of pyproject.toml hold, and no modules
import each other (no import cycle, counting imports made only for type checking)."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

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


#: the ``lint-imports`` of this interpreter's environment (``python -m importlinter.cli``
#: runs nothing: that module has no main)
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the tree at ``tree`` (its pyproject.toml, src/ and projections/)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, check=False)


def test_import_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout and " 0 kept" not in done.stdout, done.stdout[-3000:]


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checked tree (src/, projections/, pyproject.toml) whose contracts hold."""
    tree = tmp_path_factory.mktemp("tree")
    for part in ("src", "projections"):
        shutil.copytree(ROOT / part, tree / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout[-3000:]  # a planted breach is the only one
    return tree


#: one breach of each rule: (file, import planted in it, the contract that must break)
BREACHES = [
    ("src/lifecycle_es/domain/money.py", "import psycopg", "import no database driver"),
    ("src/lifecycle_es/commands.py", "import sqlite3", "import no database driver"),
    ("src/lifecycle_es/commands.py", "import lifecycle_es.stores.url", "import no database"),
    ("src/lifecycle_es/cli/output.py", "import lifecycle_es.stores.recorders",
     "entrypoints import the engine"),
    ("src/lifecycle_es/report/svg.py", "import lifecycle_es.reading.projection.runner",
     "entrypoints import the engine"),
    ("src/lifecycle_es/report/labels.py", "import lifecycle_es.writing.application",
     "entrypoints import the engine"),
    ("src/lifecycle_es/demo.py", "from lifecycle_es.stores import event_log",
     "entrypoints import the engine"),
    ("src/lifecycle_es/web/console.py", "import lifecycle_es.stores.recorders",
     "entrypoints import the engine"),
    ("projections/current_stage.py", "import lifecycle_es.engine", "read models (projections/)"),
    ("projections/gaps_facts.py", "import lifecycle_es.reading.projection.runner",
     "read models (projections/)"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("path", "line", "contract"), BREACHES,
                         ids=[f"{p.rsplit('/', 1)[-1]}:{line}" for p, line, _ in BREACHES])
def test_lint_imports_fails_on_a_planted_breach(tree_copy: Path, path: str, line: str,
                                                contract: str) -> None:
    target = tree_copy / path
    new_package = not target.parent.exists()  # the web console, before it lands
    if new_package:
        target.parent.mkdir()
        (target.parent / "__init__.py").write_text("")
    original = target.read_text() if target.exists() else ""
    try:
        target.write_text(f"{original}\n{line}  # planted\n")
        done = lint_imports(tree_copy)
    finally:
        if new_package:
            shutil.rmtree(target.parent)
        else:
            target.write_text(original)
    assert done.returncode != 0, done.stdout[-3000:]
    broken = done.stdout[done.stdout.index("Broken contracts"):]
    assert contract in broken and line.split()[-1].split(".")[0] in broken, broken


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


#: SQL in a string: a statement keyword followed by what such a statement names
SQL = re.compile(r"\b(SELECT\s.+?\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|"
                 r"CREATE\s+(TABLE|INDEX)\s|DROP\s+TABLE\s|PRAGMA\s+\w)",
                 re.IGNORECASE | re.DOTALL)
#: calls that run SQL on a connection or cursor
RUNS_SQL = {"execute", "executemany", "executescript", "fetchall", "fetchone", "fetch"}
ENTRYPOINTS = ("cli", "report", "web", "demo.py")


def raw_sql(path: Path) -> list[str]:
    """The SQL strings and SQL-running calls in one module (line: what)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SQL.search(node.value):
            found.append(f"{node.lineno}: {node.value[:60]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in RUNS_SQL:
            found.append(f"{node.lineno}: .{node.func.attr}(...)")
    return sorted(found, key=lambda f: int(f.split(":")[0]))


def entrypoint_modules(package: Path) -> list[Path]:
    paths: list[Path] = []
    for name in ENTRYPOINTS:
        where = package / name
        paths += sorted(where.rglob("*.py")) if where.is_dir() else [where] * where.exists()
    return paths


def test_entrypoints_run_no_raw_sql() -> None:
    """SQL lives in the stores and the read side: the CLI, the report, the demo and the web
    console ask the engine or the read side's query functions."""
    modules = entrypoint_modules(ROOT / "src" / "lifecycle_es")
    assert len(modules) > 15
    found = {str(p.relative_to(ROOT)): raw_sql(p) for p in modules}
    assert {p: f for p, f in found.items() if f} == {}


def test_the_raw_sql_finder_finds_planted_sql(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('rows = pm.read.fetchall("SELECT stage, COUNT(*) FROM current_stage")\n'
                       'q = """\n  insert into audit_index VALUES (1)"""\n'
                       'label = "select a customer"  # words, not SQL\n')
    assert [f.split(":")[0] for f in raw_sql(planted)] == ["1", "1", "2"]
