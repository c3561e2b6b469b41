"""Reads that never wait for writers: a query catches up once per top-level call, and a
catch-up with nothing new reads the head and the positions, without a lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from cli_helpers import cli, in_process
from projection_gen import write

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection import queries
from lifecycle_es.stores.url import StoreURL

#: what opening an engine and its read store costs on SQLite: the connections' PRAGMAs, one
#: read of each database's schema, one of the settings and the master key's fingerprint
_OPENING = 8


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement of every SQLite connection opened meanwhile."""
    statements: list[str] = []
    connect = sqlite3.connect

    def tracing(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", tracing)
    yield statements


def machinery(statements: list[str]) -> list[str]:
    """The statements of catch-ups (reads of positions and head, locks, writes), without
    the read store's opening (its schema)."""
    return [s for s in statements
            if ("projection_state" in s and not s.startswith("CREATE")
                and not s.endswith("LIMIT 0") and "sqlite_master" not in s)
            or (s.startswith("SELECT MAX(") and "events" in s)  # the head of the log
            or s.startswith(("BEGIN IMMEDIATE", "UPDATE", "INSERT"))]


def test_the_report_catches_up_once(tmp_path: Path, traced: list[str],
                                    capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    cli(store, "demo", "--customers", "40", "--until", "2026-01-01")
    traced.clear()
    out = tmp_path / "r.html"
    code, _, err = in_process(capsys, monkeypatch, store, "report", "--out", str(out))
    assert code == 0, err
    assert out.stat().st_size > 10_000
    ours = machinery(traced)
    # one read of the head, one of the positions; no write lock (199 statements before)
    assert len(ours) == 2, ours
    assert not [s for s in traced if s.startswith("BEGIN IMMEDIATE")]
    # the report's own queries (facts read once per call for this period's as-of and the
    # previous one's, both periods' metrics summaries in 2 statements, the purchases the
    # prediction is fitted on for each, 1 statement, the work on gaps in one) and the
    # opening make the rest (84 statements before)
    assert len(traced) <= _OPENING + 24, len(traced)


def test_opening_a_store_again_creates_nothing(tmp_path: Path, traced: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    eng = LifecycleEngine(url, stage_model="customer-success")
    try:  # a new store: its tables are made, its model and key recorded
        write(eng, customers=2)
        assert [s for s in traced if s.startswith("CREATE TABLE")]
        fingerprint = eng.writer.recorder.master_fingerprint()  # type: ignore[attr-defined]
    finally:
        eng.close()
    traced.clear()
    eng = LifecycleEngine(url)
    try:
        assert not [s for s in traced if s.startswith(("CREATE", "BEGIN", "INSERT", "ALTER"))]
        # 2 PRAGMAs, the schema, settings and fingerprint, whether the settings are chained
        assert len(traced) == 5, traced
        assert eng.stage_model.name == "customer-success"  # read in the opening's one read
        assert eng.writer.recorder.master_fingerprint() == fingerprint  # type: ignore[attr-defined]
        traced.clear()  # after the opening, settings are read from the store again
        assert eng.writer.recorder.get_setting("stage_model") is not None  # type: ignore[attr-defined]
        assert [s for s in traced if "lifecycle_settings" in s]
    finally:
        eng.close()


def test_a_call_reads_the_same_facts_once(tmp_path: Path, traced: list[str]) -> None:
    eng = LifecycleEngine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        write(eng, customers=4)
        eng.projections.catch_up()
        at = datetime.now(UTC)
        with eng.projections.reading():
            first = eng.gaps(at), eng.health(as_of=at), eng.customer_facts(at)
            traced.clear()
            assert (eng.gaps(at), eng.health(as_of=at)) == first[:2]  # what the call read
            assert [s for s in traced if "gap_" in s or "handover_history" in s] == []
            write(eng, customers=2, start=4)
            eng.projections.catch_up()  # applied within the call: the facts read again
            traced.clear()
            assert len(eng.customer_facts(at)) == 6
            assert [s for s in traced if "gap_now" in s]
        traced.clear()
        eng.gaps()  # the next call reads afresh
        assert [s for s in traced if "gap_now" in s]
    finally:
        eng.close()


def test_a_scope_catches_up_once_then_sees_no_newer_event(tmp_path: Path,
                                                        traced: list[str]) -> None:
    eng = LifecycleEngine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        write(eng, customers=3)
        pm = eng.projections
        pm.catch_up()
        with pm.reading():
            traced.clear()
            first = queries.stage_counts(pm)
            assert len(machinery(traced)) == 2  # the head, the positions of all
            write(eng, customers=2, start=3)  # recorded inside the call: not read again
            traced.clear()
            assert queries.stage_counts(pm) == first
            queries.handovers(pm)
            assert machinery(traced) == []
        assert sum(r["customers"] for r in queries.stage_counts(pm)) == 5  # the next call
    finally:
        eng.close()


def test_a_no_op_catch_up_reads_two_statements(tmp_path: Path, traced: list[str]) -> None:
    eng = LifecycleEngine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        write(eng, customers=3)
        eng.projections.catch_up()
        traced.clear()
        assert eng.projections.catch_up() == 0
        statements = [s for s in traced if s not in ("BEGIN", "ROLLBACK")]  # read-only
        assert len(statements) == 2, statements
    finally:
        eng.close()


def _hold_write_lock(url: str, kind: str) -> Callable[[], None]:
    """Another connection holds the database's (SQLite) or every read model's
    (PostgreSQL) write lock until the returned function is called."""
    store = StoreURL.parse(url)
    if kind == "sqlite":
        lite = sqlite3.connect(store.path, isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")

        def release_sqlite() -> None:
            lite.execute("ROLLBACK")
            lite.close()

        return release_sqlite
    pg = psycopg.connect(store.psycopg_conninfo())
    with pg.cursor() as cur:
        cur.execute("SELECT name FROM " + _state_table(store) + " ORDER BY name")
        for (name,) in cur.fetchall():
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"lifecycle_es:{name}",))

    def release_pg() -> None:
        pg.rollback()
        pg.close()

    return release_pg


def _state_table(store: StoreURL) -> str:
    schema = "lifecycle_read" if store.schema == "public" else f"{store.schema}_read"
    return f'"{schema}".projection_state'


def test_a_no_op_catch_up_takes_no_write_lock(durable_store_url: str) -> None:
    kind = "sqlite" if durable_store_url.startswith("sqlite") else "postgres"
    eng = LifecycleEngine(durable_store_url)
    try:
        write(eng, customers=3)
        eng.projections.catch_up()
        release = _hold_write_lock(durable_store_url, kind)
        result: list[object] = []

        def query() -> None:
            try:
                result.append(eng.projections.catch_up())
                result.append(queries.stage_counts(eng.projections))
            except BaseException as exc:
                result.append(exc)

        thread = threading.Thread(target=query)
        started = time.monotonic()
        thread.start()
        thread.join(timeout=3)
        waited = time.monotonic() - started
        release()
        thread.join()
        assert waited < 3, "the no-op catch-up waited for the writer's lock"
        assert result[0] == 0 and isinstance(result[1], list), result
    finally:
        eng.close()
