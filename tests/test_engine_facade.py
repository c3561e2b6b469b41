"""The engine is a facade over the parts ``bootstrap()`` builds: not the library's Application,
a public surface documented in one place, the read side built without the engine, read-store
selection in one place, and the write side's signatures kept for type checkers."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eventsourcing.application import Application

from lifecycle_es import LifecycleEngine
from lifecycle_es.bootstrap import ReadSide, bootstrap
from lifecycle_es.writing.application import LifecycleApplication
from lifecycle_es.writing.bulk_import import BulkImportApplication

ROOT = Path(__file__).resolve().parent.parent
ACME = {"customer": "acme", "at": "2024-01-02T09:00:00Z", "actor": "ann", "team": "marketing",
        "name": "Acme", "segment": "smb", "source": "web"}


def documented() -> set[str]:
    """The names the class docstring lists as the engine's public surface."""
    doc = LifecycleEngine.__doc__ or ""
    surface = doc[:doc.index("- ``writer``")]  # then the write side's own attributes
    return {"writer", *re.findall(r"``(\w+)(?:\(\))?``", surface)}


def public(engine: LifecycleEngine) -> set[str]:
    return {n for n in (*dir(type(engine)), *vars(engine)) if not n.startswith("_")}


def test_the_engine_is_a_facade_not_the_librarys_application() -> None:
    engine = LifecycleEngine("memory://")
    try:
        assert not isinstance(engine, Application)
        assert isinstance(engine.writer, BulkImportApplication)
        assert engine.register(**ACME) == 1
        assert engine.customer("acme").version == 1
    finally:
        engine.close()


def test_the_engine_closes_at_the_end_of_a_with_block(tmp_path: Path) -> None:
    with LifecycleEngine(f"sqlite:///{tmp_path / 'a.db'}") as engine:
        engine.register(**ACME)
        assert engine.projections.status()
    with pytest.raises(Exception, match=r"(?i)closed"):
        engine.projections.read.execute("SELECT 1")


def test_the_public_surface_is_the_documented_one() -> None:
    engine = LifecycleEngine("memory://")
    try:
        commands = {"register", "purchase", "end_campaign"}  # the docstring's examples
        listed = documented() - commands
        assert listed <= public(engine), listed - public(engine)
        undocumented = public(engine) - documented()
        # the command methods are documented as "one method per command"
        assert all(getattr(BulkImportApplication, n, None) is not None
                   and inspect.signature(getattr(engine, n)).return_annotation in (int, "int")
                   for n in undocumented), sorted(undocumented)
        # a cap that makes growth a decision: 40 before prediction, alerts and API tokens
        assert len(public(engine) - undocumented) <= 45
    finally:
        engine.close()


def test_the_architecture_document_lists_the_same_surface() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## The engine"):]
    section = section[:section.index("\n## ", 3)]
    missing = {n for n in documented() if f"`{n}" not in section}
    assert not missing, missing


def test_the_read_side_is_built_on_the_store_never_on_the_engine(tmp_path: Path) -> None:
    engine = LifecycleEngine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        engine.register(**ACME)
        source = engine.projections.engine
        assert isinstance(source, ReadSide)
        held = [v for v in vars(source).values()
                if isinstance(v, (LifecycleEngine, Application))]
        assert held == []
        assert source.store == engine.store and source.stage_model == engine.stage_model
        assert engine.audit.engine is source and engine.metrics.engine is source
        assert list(engine.customer_facts(datetime.now(UTC))) == ["acme"]
    finally:
        engine.close()


def test_the_engine_writes_the_tables_the_write_side_reads(durable_store_url: str) -> None:
    """The import's writer process and the rebuild's workers open the store with the write
    side's own application: they must find what the engine wrote (the library names tables
    after the application)."""
    engine = LifecycleEngine(durable_store_url)
    try:
        engine.register(**ACME)
    finally:
        engine.close()
    other = LifecycleApplication(durable_store_url, create=False)
    try:
        assert other.customer("acme").version == 1
    finally:
        other.close()


def test_queries_read_the_read_store_chosen_in_one_place(tmp_path: Path) -> None:
    primary, replica = f"sqlite:///{tmp_path / 'p.db'}", f"sqlite:///{tmp_path / 'r.db'}"
    made = LifecycleEngine(replica)  # a replica with its read models, and no customer
    made.projections.catch_up()
    made.close()
    parts = bootstrap(primary, read_store=replica)
    try:
        assert parts.read_store is not None and parts.read_store.read_only
        assert parts.read_store.path == str(tmp_path / "r.db")
    finally:
        parts.read.close()
        parts.writer.close()
    engine = LifecycleEngine(primary, read_store=replica)
    alone = LifecycleEngine(primary)
    try:
        assert engine.reader is not engine and engine.reader.store.read_only
        assert engine.reader.store == LifecycleEngine.for_queries(replica).store
        assert alone.reader is alone and alone.read_store is None
        engine.register(**ACME)
        assert engine.gaps() == []  # the replica has no customer
        assert {g.customer for g in alone.gaps()} == {"acme"}
    finally:
        engine.close()
        alone.close()


def test_command_methods_keep_the_write_sides_signature_and_docstring() -> None:
    for name in ("execute", "erase", "import_lines", "record_many", "customer", "history"):
        mine, theirs = getattr(LifecycleEngine, name), getattr(BulkImportApplication, name)
        assert inspect.signature(mine) == inspect.signature(theirs), name
        assert mine.__doc__ == theirs.__doc__ or name == "erase"


@pytest.mark.slow
def test_a_type_checker_rejects_a_wrong_call_through_the_facade(tmp_path: Path) -> None:
    user = tmp_path / "user_code.py"
    user.write_text("from lifecycle_es import LifecycleEngine\n"
                    "engine = LifecycleEngine('memory://')\n"
                    "engine.customer(42)\n"
                    "engine.import_lines(['{}'], batch_sise=3)\n"
                    "engine.history('acme')\n")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
                           str(user)], cwd=ROOT, capture_output=True, text=True, check=False)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, done.stdout
    assert ":3:" in errors[0] and ":4:" in errors[1] and "batch_sise" in errors[1]
