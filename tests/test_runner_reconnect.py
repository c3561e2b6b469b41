"""`projections run` outlives its database: cut connections, a locked SQLite file."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from cli_helpers import popen
from projection_gen import write

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection.runner import ProjectionManager
from lifecycle_es.stores.url import StoreURL

PASSWORD = "s3cret-Pw-41"


def raw(pm: ProjectionManager) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: pm.read.fetchall(f"SELECT * FROM {t.name} ORDER BY {', '.join(t.key)}")
            for p in pm.projections.values() for t in p.tables}


def caught_up(pm: ProjectionManager, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s.position == s.head for s in pm.status()):
            return True
        time.sleep(0.1)
    return False


def assert_equals_clean_rebuild(pm: ProjectionManager) -> None:
    followed = raw(pm)
    assert followed["audit_index"], "nothing was projected"
    pm.rebuild(batch_size=97)
    assert raw(pm) == followed


def test_runner_survives_terminated_sessions(store_url_factory: Callable[[str], str]) -> None:
    url = store_url_factory("postgres").replace("postgres@", f"postgres:{PASSWORD}@", 1)
    store = StoreURL.parse(url)
    eng = LifecycleEngine(url)
    write(eng, customers=10)
    app = f"lc_runner_{uuid.uuid4().hex[:10]}"  # the runner's sessions, and only those
    runner = popen(url, "projections", "run", "--poll", "0.2",
                   env={**os.environ, "PGAPPNAME": app})
    killed = 0
    try:
        assert caught_up(eng.projections, timeout=60), "the runner did not start"
        with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as admin:
            deadline = time.monotonic() + 3.0
            start = 10
            next_kill = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                write(eng, customers=1, start=start, seed=start)  # events keep arriving
                start += 1
                if time.monotonic() >= next_kill:
                    rows = admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = %s AND datname = current_database() "
                        "AND pid <> pg_backend_pid()", (app,)).fetchall()
                    killed += sum(1 for (ok,) in rows if ok)
                    next_kill = time.monotonic() + 0.5
                time.sleep(0.05)
                assert runner.poll() is None, runner.communicate()[1][-2000:]
        assert killed >= 5  # the runner's connections were cut, repeatedly
        assert caught_up(eng.projections, timeout=30), "the runner did not catch up"
    finally:
        runner.send_signal(signal.SIGINT)
        try:
            _, err = runner.communicate(timeout=30)
        finally:
            if runner.poll() is None:
                runner.kill()
    assert runner.returncode == 0, err[-2000:]
    assert "projections.connection_lost" in err and "projections.reconnected" in err
    assert PASSWORD not in err
    assert_equals_clean_rebuild(eng.projections)
    eng.close()


def test_follow_waits_out_a_locked_sqlite_database(
        store_url_factory: Callable[[str], str], caplog: pytest.LogCaptureFixture) -> None:
    url = store_url_factory("sqlite")
    eng = LifecycleEngine(url)
    write(eng, customers=5)
    pm = eng.projections
    pm.read.execute("PRAGMA busy_timeout = 50")  # the default waits 30 s for a lock
    stop = threading.Event()
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            pm.follow(poll_interval=0.05, stop=stop)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    caplog.set_level(logging.WARNING, logger="lifecycle_es.projection")
    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        assert caught_up(pm, timeout=20)
        write(eng, customers=3, start=5, seed=3)
        locker = sqlite3.connect(StoreURL.parse(url).path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # the runner cannot write its rows meanwhile
        time.sleep(1.0)
        assert thread.is_alive() and not errors
        locker.execute("COMMIT")
        locker.close()
        assert caught_up(pm, timeout=20)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive() and not errors, errors
    lost = [r for r in caplog.records
            if isinstance(r.msg, dict) and r.msg.get("event") == "projections.connection_lost"]
    assert lost and all(r.levelno == logging.WARNING for r in lost)
    assert "locked" in lost[0].msg["error"]
    assert [r.msg["attempt"] for r in lost][:2] == [1, 2]
    assert_equals_clean_rebuild(pm)
    eng.close()
