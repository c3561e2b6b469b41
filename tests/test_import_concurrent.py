"""Imports at the same time into one store, as docs/import.md ("Other writers wait") says:
two different files both import (the second waits for the first's commit); the same file
twice imports once, and the other run says so — "already imported" (exit 0), or, when both
had written, "another run of the same file was imported meanwhile" (exit 3, nothing written)
— never the message of another writer. SQLite and PostgreSQL.

(An import that waits longer than the store URL's ``timeout=`` for another writer gives up:
tests/test_store_faults.py, ``test_cli_*_locked[import]``.)"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import psycopg
from cli_helpers import cli, popen

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate
from lifecycle_es.domain.stage_model import PRESETS
from lifecycle_es.stores.url import StoreURL

HOLD = 8.0  # seconds the write lock is held while both imports start (and check)


def history(path: Path, prefix: str) -> int:
    """A demo history whose customers and campaigns are named ``prefix``...; its lines."""
    commands = generate(60, 7, PRESETS["classic"], date(2026, 1, 1))
    for c in commands:
        for field in ("customer", "campaign", "campaign_id"):
            if c.get(field):
                c[field] = prefix + c[field]
        if c.get("gap_id"):  # KIND:CUSTOMER:SUBJECT names the customer too
            kind, customer, subject = c["gap_id"].split(":", 2)
            c["gap_id"] = f"{kind}:{prefix}{customer}:{subject}"
    path.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in commands))
    return len(commands)


@contextlib.contextmanager
def write_lock(url: str) -> Iterator[None]:
    """Hold the store's write lock (as a long import would) for the block."""
    store = StoreURL.parse(url)
    if store.kind == "sqlite":
        conn: Any = sqlite3.connect(store.path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn = psycopg.connect(store.psycopg_conninfo())
        conn.execute(f'LOCK TABLE "{store.schema}".lifecycle_events IN EXCLUSIVE MODE')
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def both(url: str, first: Path, second: Path) -> list[subprocess.CompletedProcess[str]]:
    """Start two imports while the write lock is held, release it, wait for both."""
    with_timeout = url + ("&" if "?" in url else "?") + "timeout=60"
    with write_lock(url):
        procs = [popen(with_timeout, "import", str(p)) for p in (first, second)]
        time.sleep(HOLD)  # both check their lines meanwhile and wait to write
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def events(url: str) -> int:
    engine = LifecycleEngine(url)
    try:
        return int(engine.writer.recorder.max_notification_id() or 0)
    finally:
        engine.close()


def test_two_different_files_at_once_both_import(durable_store_url: str,
                                                 tmp_path: Path) -> None:
    cli(durable_store_url, "init")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    lines = history(a, "a-") + history(b, "b-")
    runs = both(durable_store_url, a, b)
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("imported "), run.stdout
    assert events(durable_store_url) == lines


def test_the_same_file_twice_at_once_imports_once(durable_store_url: str,
                                                  tmp_path: Path) -> None:
    cli(durable_store_url, "init")
    a = tmp_path / "a.jsonl"
    lines = history(a, "a-")
    runs = both(durable_store_url, a, a)
    imported = [r for r in runs if r.returncode == 0 and r.stdout.startswith("imported ")]
    assert len(imported) == 1, [(r.returncode, r.stdout, r.stderr) for r in runs]
    other = next(r for r in runs if r is not imported[0])
    assert "another writer" not in other.stderr, other.stderr
    if other.returncode == 0:
        assert other.stdout.startswith("already imported on "), other.stdout
    else:
        assert other.returncode == 3, other.stderr
        assert ("error: import failed, nothing written: another run of the same file was "
                "imported meanwhile") in other.stderr
        assert "Traceback" not in other.stderr
    assert events(durable_store_url) == lines
    again = cli(durable_store_url, "import", str(a))
    assert again.stdout.startswith("already imported on ")

