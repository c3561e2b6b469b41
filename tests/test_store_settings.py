"""Issue 18: libpq settings reach the driver, schema names are checked, and commands that
only read refuse a store that does not exist (creating nothing)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import PG_URL, drop_schema, need_postgres

from lifecycle_es import LifecycleEngine
from lifecycle_es.errors import StoreError
from lifecycle_es.stores.url import StoreURL


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lifecycle_es.cli.main", *args],
                          capture_output=True, text=True, check=False)


def with_params(**params: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return PG_URL + sep + "&".join(f"{k}={v}" for k, v in params.items())


def test_sslmode_require_without_tls_fails_with_one_line_exit_3() -> None:
    need_postgres()
    done = cli("--store", with_params(sslmode="require"), "stage")
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "SSL" in lines[0], done.stderr


def test_application_name_is_seen_by_the_server() -> None:
    need_postgres()
    name = f"lc_app_{uuid.uuid4().hex[:8]}"
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = LifecycleEngine(with_params(application_name=name, schema=schema))
    try:
        with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo()) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                               "WHERE application_name = %s", (name,)).fetchone()
        assert row is not None and row[0] >= 1
    finally:
        engine.close()
        drop_schema(schema)


def test_a_bad_schema_name_is_refused_and_nothing_created() -> None:
    need_postgres()
    with pytest.raises(StoreError, match="schema='a;b'"):
        LifecycleEngine(with_params(schema="a;b"))
    done = cli("--store", with_params(schema="Bad-Name"), "init")
    assert done.returncode == 3 and "schema=" in done.stderr


def test_a_missing_sqlite_store_is_refused_by_reads(tmp_path: Path) -> None:
    path = tmp_path / "lifecyle.db"
    done = cli("--store", f"sqlite:///{path}", "stage")
    assert done.returncode == 3
    assert "does not exist" in done.stderr and str(path) in done.stderr
    assert list(tmp_path.iterdir()) == []
    assert cli("--store", f"sqlite:///{path}", "init").returncode == 0
    assert path.is_file()
    assert cli("--store", f"sqlite:///{path}", "stage").returncode == 0


def test_a_bad_stage_model_file_leaves_no_store(tmp_path: Path) -> None:
    model = tmp_path / "model.toml"
    model.write_text("not = [valid")
    done = cli("--store", f"sqlite:///{tmp_path / 'new.db'}", "--stage-model", str(model),
               "init")
    assert done.returncode == 2, done.stderr
    assert not (tmp_path / "new.db").exists()


def test_a_missing_postgres_schema_is_refused_and_not_created() -> None:
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:10]}"
    done = cli("--store", with_params(schema=schema), "stage")
    assert done.returncode == 3 and "does not exist" in done.stderr
    with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo()) as conn:
        row = conn.execute("SELECT count(*) FROM information_schema.schemata "
                           "WHERE schema_name LIKE %s", (f"{schema}%",)).fetchone()
    assert row == (0,)
