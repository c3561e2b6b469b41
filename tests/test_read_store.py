"""Issue 18, queries that never write: ``--read-store`` sends every query to a replica or a
read-only role; there nothing is caught up, locked or created, and the answer says how far
behind the read models are. Tried with a PostgreSQL role that can only read
(``default_transaction_read_only = on``, SELECT grants) and on SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import PG_URL, drop_schema, need_postgres
from lifecycle_samples import FULL_LIFECYCLE, jsonl

from lifecycle_es import LifecycleEngine
from lifecycle_es.stores.url import StoreURL

#: every query command, each as the CLI runs it (REPORT is replaced by a file path)
QUERIES: list[list[str]] = [
    ["stage"], ["stage", "--customer", "acme"], ["handovers"], ["handovers", "--pending"],
    ["metrics", "--from", "2024-01-01", "--to", "2025-01-01"], ["funnel"],
    ["cohorts"], ["time-in-stage"], ["gaps"], ["health"], ["health", "--customer", "acme"],
    ["report", "--out", "REPORT"], ["audit", "customer", "acme"],
    ["audit", "customer", "acme", "--state"], ["audit", "events"], ["audit", "verify"],
    ["projections", "status"], ["projections", "errors"], ["keys", "status"],
]
#: the queries that read read models (they report their freshness)
READ_MODEL_QUERIES = [q for q in QUERIES if q[0] not in ("audit", "keys")
                      or q[:2] == ["audit", "events"]]
#: the part of the history there before the read models were last caught up
CAUGHT_UP = 20


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lifecycle_es.cli.main", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def fill(url: str) -> tuple[int, int]:
    """The sample history with its read models caught up part of the way: (position they
    reached, head of the log)."""
    engine = LifecycleEngine(url)
    try:
        engine.import_lines(jsonl(FULL_LIFECYCLE[:CAUGHT_UP]).splitlines())
        engine.projections.catch_up()
        reached = engine.projections.head()
        engine.import_lines(jsonl(FULL_LIFECYCLE[CAUGHT_UP:]).splitlines())
        return reached, engine.projections.head()
    finally:
        engine.close()


def positions(fetch: Any) -> dict[str, int]:
    return {str(n): int(p) for n, p in fetch("SELECT name, position FROM projection_state")}


def query_args(query: list[str], tmp_path: Path) -> list[str]:
    return [str(tmp_path / "report.html") if a == "REPORT" else a for a in query]


# ------------------------------------------------------------------ PostgreSQL role


@pytest.fixture
def readonly_role() -> Iterator[tuple[str, str, str]]:
    """A store in its own schema and a role that can only read it: (writer URL, reader
    URL, schema). Schema and role are dropped afterwards."""
    need_postgres()
    tag = uuid.uuid4().hex[:8]
    schema, role = f"issue18_rs_{tag}", f"issue18_auditor_{tag}"
    base = StoreURL.parse(PG_URL)
    writer = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    reader = f"postgresql://{role}@{base.host}:{base.port}/{base.dbname}?schema={schema}"
    admin = psycopg.connect(base.psycopg_conninfo(), autocommit=True)
    admin.execute(f"CREATE ROLE {role} LOGIN")
    admin.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    try:
        yield writer, reader, schema
    finally:
        drop_schema(schema)
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE {role}")
        admin.close()


def grant_reads(schema: str, role: str, *, read_models: bool = True) -> None:
    """What docs/operations.md gives an auditor: USAGE and SELECT (also on the tables a
    rebuild will swap in), nothing else."""
    with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo(), autocommit=True) as c:
        for s in (schema, f"{schema}_read") if read_models else (schema,):
            c.execute(f'GRANT USAGE ON SCHEMA "{s}" TO {role}')
            c.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{s}" TO {role}')
        if read_models:
            c.execute(f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}_read" '
                      f"GRANT SELECT ON TABLES TO {role}")


def writes_to(schema: str) -> tuple[int, dict[str, int], int]:
    """Rows ever inserted, updated or deleted in the store's two schemas (the statistics
    collector's count), the read models' positions, and the events' count."""
    with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo(), autocommit=True) as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
        row = c.execute("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
                        "FROM pg_stat_user_tables WHERE schemaname IN (%s, %s)",
                        (schema, f"{schema}_read")).fetchone()
        c.execute(f'SET search_path TO "{schema}_read"')
        at = positions(lambda sql: c.execute(sql).fetchall())
        events = c.execute(f'SELECT count(*) FROM "{schema}".lifecycle_events').fetchone()
    assert row is not None and events is not None
    return int(row[0]), at, int(events[0])


def test_every_query_works_on_a_read_only_role_and_writes_nothing(
        readonly_role: tuple[str, str, str], tmp_path: Path) -> None:
    writer, reader, schema = readonly_role
    reached, head = fill(writer)
    assert reached < head  # the read models are behind: a catch-up would write
    grant_reads(schema, reader.split("//")[1].split("@")[0])
    time.sleep(1)  # the statistics of the filling sessions are flushed when they end
    before = writes_to(schema)
    never = tmp_path / "never.db"  # the --store of these runs: must not even be created
    for query in QUERIES:
        done = run_cli("--store", f"sqlite:///{never}", "--read-store", reader,
                       *query_args(query, tmp_path))
        assert done.returncode == 0, (query, done.stderr)
        if query in READ_MODEL_QUERIES:
            assert f"up to position {reached}," in done.stderr, (query, done.stderr)
            assert f"log head is {head} ({head - reached} not yet" in done.stderr, query
    time.sleep(1)  # the statistics of the runs' sessions are flushed when they end
    after = writes_to(schema)
    assert after == before, "a query wrote"
    assert after[1] and set(after[1].values()) == {reached}  # nothing caught up
    assert not never.exists()
    assert (tmp_path / "report.html").stat().st_size > 10_000
    # the primary rebuilds (new tables are swapped in): the auditor still reads them
    assert run_cli("--store", writer, "projections", "rebuild").returncode == 0
    done = run_cli("--read-store", reader, "stage", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["read_models"]["position"] == head


def test_json_answers_carry_the_freshness(readonly_role: tuple[str, str, str]) -> None:
    writer, reader, schema = readonly_role
    reached, head = fill(writer)
    grant_reads(schema, reader.split("//")[1].split("@")[0])
    done = run_cli("--read-store", reader, "stage", "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    fresh = answer["read_models"]
    assert fresh["position"] == reached and fresh["head"] == head
    assert fresh["behind"] == head - reached and fresh["read_models"] == ["current_stage"]
    assert fresh["age_seconds"] >= 0 and fresh["recorded_at"]
    assert {r["stage"] for r in answer["result"]} >= {"consideration"}  # as of `reached`
    assert "up to position" not in done.stderr  # said once, in the answer


def test_the_environment_names_the_read_store(readonly_role: tuple[str, str, str]) -> None:
    writer, reader, schema = readonly_role
    reached, _ = fill(writer)
    grant_reads(schema, reader.split("//")[1].split("@")[0])
    done = subprocess.run([sys.executable, "-m", "lifecycle_es.cli.main", "gaps"],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**__import__("os").environ, "LIFECYCLE_ES_READ_STORE": reader})
    assert done.returncode == 0, done.stderr
    assert f"up to position {reached}," in done.stderr


def test_missing_read_models_are_one_line_exit_3(readonly_role: tuple[str, str, str]) -> None:
    writer, reader, schema = readonly_role
    LifecycleEngine(writer).close()  # events schema only: the read models were never built
    grant_reads(schema, reader.split("//")[1].split("@")[0], read_models=False)
    done = run_cli("--read-store", reader, "stage")
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no read models in schema" in lines[0], done.stderr
    with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo()) as c:
        row = c.execute("SELECT to_regnamespace(%s)", (f"{schema}_read",)).fetchone()
    assert row is not None and row[0] is None  # nothing created


def test_a_role_without_the_grants_gets_one_line_exit_3(
        readonly_role: tuple[str, str, str]) -> None:
    writer, reader, schema = readonly_role
    fill(writer)
    role = reader.split("//")[1].split("@")[0]
    grant_reads(schema, role, read_models=False)  # the events, and only USAGE on the read
    with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo(), autocommit=True) as c:
        c.execute(f'GRANT USAGE ON SCHEMA "{schema}_read" TO {role}')
        c.execute(f'GRANT SELECT ON "{schema}_read".projection_state TO {role}')
    done = run_cli("--read-store", reader, "stage")
    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "permission denied for table current_stage" in lines[0], lines


def test_a_catch_up_on_a_read_store_is_refused(readonly_role: tuple[str, str, str]) -> None:
    writer, reader, schema = readonly_role
    fill(writer)
    grant_reads(schema, reader.split("//")[1].split("@")[0])
    engine = LifecycleEngine(writer, read_store=reader)
    try:
        before = writes_to(schema)[1]
        assert engine.metrics.summary("2024-01-01", "2025-01-01").paying_at_end >= 0
        assert engine.gaps("2024-03-01") is not None
        from lifecycle_es.errors import StoreError

        with pytest.raises(StoreError, match="is only read"):
            engine.reader.projections.catch_up()
        assert writes_to(schema)[1] == before  # the library's queries did not catch up
    finally:
        engine.close()


def test_a_read_only_url_forbids_writes_in_the_session(
        readonly_role: tuple[str, str, str]) -> None:
    """``?read_only=on`` on a role that could write: PostgreSQL itself refuses."""
    writer, _, _ = readonly_role
    fill(writer)
    engine = LifecycleEngine(StoreURL.parse(writer).as_read_only())
    try:
        with pytest.raises(Exception, match="read-only"):
            engine.projections.read.execute("CREATE TABLE sneaky (x int)")
    finally:
        engine.close()


def test_a_read_only_engine_claims_no_key_and_makes_no_snapshot_table(
        durable_store_url: str) -> None:
    """A store written without encryption (no master key fingerprint recorded) and before
    snapshots: a read-only engine reads it and records nothing (no fingerprint, no table)."""
    plain = LifecycleEngine(durable_store_url, encrypt=False, snapshot_every=0)
    try:
        plain.import_lines(jsonl(FULL_LIFECYCLE).splitlines())
        plain.projections.catch_up()
    finally:
        plain.close()
    reader = LifecycleEngine(StoreURL.parse(durable_store_url).as_read_only())
    try:
        assert reader.customer("acme").state.name
        assert reader.writer.snapshots is None
        assert reader.writer.recorder.master_fingerprint() is None  # type: ignore[attr-defined]
    finally:
        reader.close()


# ------------------------------------------------------------------------ SQLite


def test_sqlite_read_store_queries_never_catch_up(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "store.db"
    reached, _ = fill(f"sqlite:///{path}")
    for query in (["stage"], ["gaps"], ["funnel"], ["audit", "events"]):
        done = run_cli("--read-store", f"sqlite:///{path}", *query)
        assert done.returncode == 0, (query, done.stderr)
        assert f"up to position {reached}," in done.stderr
    with sqlite3.connect(path) as c:
        assert set(positions(lambda sql: c.execute(sql).fetchall()).values()) == {reached}
    done = run_cli("--read-store", f"sqlite:///{tmp_path / 'missing.db'}", "stage")
    assert done.returncode == 3 and "does not exist" in done.stderr
    assert not (tmp_path / "missing.db").exists()


# ---------------------------------------------------------------- --no-catch-up


#: every query that catches up by default
CATCHING_UP = [q for q in READ_MODEL_QUERIES if q[0] != "projections"]


@pytest.mark.parametrize("query", CATCHING_UP, ids=[" ".join(q) for q in CATCHING_UP])
def test_no_catch_up_reads_the_read_models_as_they_are(query: list[str],
                                                        tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "store.db"
    reached, head = fill(f"sqlite:///{path}")
    url = f"sqlite:///{path}"

    def at() -> set[int]:
        with sqlite3.connect(path) as c:
            return set(positions(lambda sql: c.execute(sql).fetchall()).values())

    done = run_cli("--store", url, *query_args(query, tmp_path), "--no-catch-up")
    assert done.returncode == 0, done.stderr
    assert at() == {reached}
    done = run_cli("--store", url, *query_args(query, tmp_path))
    assert done.returncode == 0, done.stderr
    assert head in at()  # the default catches up (the read models this query reads)


def test_a_read_store_error_shows_no_password() -> None:
    secret = f"pw{uuid.uuid4().hex}"
    done = run_cli("--read-store", f"postgresql://auditor:{secret}@127.0.0.1:1/crm", "stage")
    assert done.returncode == 3, done.stderr
    assert secret not in done.stderr + done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_memory_cannot_be_a_read_store() -> None:
    done = run_cli("--read-store", "memory://", "stage")
    assert done.returncode == 3 and "cannot be a read store" in done.stderr, done.stderr
