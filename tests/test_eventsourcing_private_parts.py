"""Issue 25, item 9: every private part of ``eventsourcing`` the project relies on, pinned.

``pyproject.toml`` pins ``eventsourcing`` to the minor version it is tested with; each test
here fails if a release changes a private part we use (its name, signature or the behaviour
we rely on), so an upgrade says what to revisit. docs/architecture.md ("Private parts of
eventsourcing") lists them with the module using each.
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from conftest import need_postgres
from eventsourcing.application import Repository
from eventsourcing.domain import TZINFO, Aggregate
from eventsourcing.popo import POPOAggregateRecorder, POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection, SQLiteConnectionPool
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from lifecycle_es import LifecycleEngine
from lifecycle_es.writing.repository import CustomerRepository

AT = dict(at="2024-01-02T09:00:00Z", actor="ann", team="sales")


def params(func: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(func).parameters)


def test_the_pin_matches_the_installed_minor_version() -> None:
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    major, minor, *_ = version("eventsourcing").split(".")
    assert f'"eventsourcing>=9.5.6,<{major}.{int(minor) + 1}"' in pyproject
    assert (major, minor) == ("9", "5")


class _Thing(Aggregate):
    class Named(Aggregate.Event):
        name: str

        def apply(self, aggregate: Any) -> None:
            aggregate.name = self.name

    def __init__(self) -> None:
        self.name = ""


def test_aggregate_private_fields_behind_its_properties() -> None:
    """domain/trigger.py, domain/customer.py, domain/customer_snapshot.py set ``_id``,
    ``_version``, ``_modified_on`` and ``_pending_events`` directly."""
    agg = _Thing()
    assert {"_id", "_version", "_created_on", "_modified_on", "_pending_events"} <= set(
        vars(agg))
    assert agg._id == agg.id and agg._version == agg.version == 1
    agg._version = 7
    stamp = datetime(2024, 1, 2, tzinfo=TZINFO)
    agg._modified_on = stamp
    assert agg.version == 7 and agg.modified_on == stamp
    assert isinstance(agg._pending_events, list) and len(agg._pending_events) == 1
    marker = object()
    agg._pending_events.append(marker)  # type: ignore[arg-type]
    assert agg.collect_events()[-1] is marker and agg._pending_events == []


def test_aggregate_base_init() -> None:
    """``__base_init__(originator_id, originator_version, timestamp)`` makes a loaded
    aggregate without its created event (customer.py, customer_snapshot.py)."""
    assert params(Aggregate.__base_init__) == [
        "self", "originator_id", "originator_version", "timestamp"]
    agg = object.__new__(_Thing)
    oid, stamp = uuid4(), datetime(2024, 1, 2, tzinfo=TZINFO)
    agg.__base_init__(oid, 3, stamp)
    assert (agg.id, agg.version, agg.created_on, agg.modified_on) == (oid, 3, stamp, stamp)
    assert agg._pending_events == []


def test_event_mutate_and_trigger_event_used_by_emit() -> None:
    """domain/trigger.py compares ``Event.mutate`` with the library's to know an event
    class folds through ``apply`` only, and falls back to ``trigger_event``."""
    assert _Thing.Named.mutate is Aggregate.Event.mutate  # type: ignore[attr-defined]
    assert callable(_Thing.Named.apply)
    assert params(Aggregate.trigger_event)[:2] == ["self", "event_class"]


def test_repository_reconstruct_aggregate(monkeypatch: pytest.MonkeyPatch) -> None:
    """writing/repository.py overrides ``Repository._reconstruct_aggregate`` (snapshot +
    tail); the library's ``get`` must call it with the same arguments."""
    assert params(Repository._reconstruct_aggregate) == [
        "self", "aggregate_id", "version", "projector_func"]
    engine = LifecycleEngine("memory://")
    engine.register(customer="a", name="A", segment="smb", source="web", **AT)
    calls: list[tuple[Any, ...]] = []
    original = CustomerRepository._reconstruct_aggregate

    def spy(self: Any, aggregate_id: Any, version: Any, projector_func: Any) -> Any:
        calls.append((aggregate_id, version))
        return original(self, aggregate_id, version, projector_func)

    monkeypatch.setattr(CustomerRepository, "_reconstruct_aggregate", spy)
    assert engine.customer("a").state.name == "A"
    assert calls and calls[0][1] is None


def test_sqlite_pool_fields(tmp_path: Path) -> None:
    """stores/recorders.py wraps ``SQLiteConnectionPool._create_connection`` (secure_delete
    on every connection, through ``SQLiteConnection._sqlite_conn``) and reads ``db_name``,
    ``lock_timeout``, sets ``pool_timeout``; and extends ``_create_table(c)``."""
    assert params(SQLiteConnectionPool._create_connection) == ["self"]
    assert params(SQLiteApplicationRecorder._create_table) == ["self", "c"]
    assert "_create_table" in inspect.getsource(SQLiteApplicationRecorder.create_table)
    engine = LifecycleEngine(f"sqlite:///{tmp_path / 'x.db'}")
    pool = engine.writer.recorder.datastore.pool  # type: ignore[attr-defined]
    assert isinstance(pool, SQLiteConnectionPool)
    assert pool.db_name == str(tmp_path / "x.db") and pool.lock_timeout == 5
    assert pool.pool_timeout == 5.0
    with engine.writer.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
        c.execute("PRAGMA secure_delete")
        assert c.fetchone()[0] == 1
    conn = pool._create_connection()
    assert isinstance(conn, SQLiteConnection)
    assert isinstance(conn._sqlite_conn, sqlite3.Connection)
    conn.close()
    engine.close()


def test_popo_recorder_database_lock() -> None:
    """The memory recorder writes events, keys and import records under the library's
    ``_database_lock``, which the library's own insert takes again: it must be reentrant."""
    recorder = POPOApplicationRecorder()
    lock = recorder._database_lock
    assert lock.acquire(blocking=False) and lock.acquire(blocking=False)  # reentrant
    lock.release()
    lock.release()
    assert "_database_lock" in inspect.getsource(POPOAggregateRecorder._insert_events)
    with lock:  # as stores/recorders.py MemoryRecorder.insert_events does
        assert recorder.insert_events([]) == []


@pytest.mark.parametrize("name", ["insert_events", "select_events", "select_notifications",
                                  "max_notification_id"])
def test_postgres_recorder_retry_decorator_is_unwrappable(name: str) -> None:
    """stores/faults.py ``unwrapped`` removes the library's retry decorator (``__wrapped__``)
    so a store outage is bounded by the store URL's timeout, not ten full waits."""
    method = getattr(PostgresApplicationRecorder, name)
    inner = method.__wrapped__
    assert params(inner) == params(method) and "retry" not in inner.__qualname__


def test_postgres_pool_fields_and_names() -> None:
    """stores/recorders.py sets up the library's pool before it opens (``open=False``):
    replaces ``conninfo`` and ``kwargs`` (all libpq settings, ``dict_row``, session
    options); chain_snapshot.py borrows connections with ``getconn``/``putconn``; the
    recorder's ``events_table_name``, ``notification_id_index_name``, ``channel_name`` and
    the datastore's ``schema`` name its tables."""
    need_postgres()
    assert "open=False" in inspect.getsource(PostgresDatastore.__init__)
    from conftest import PG_URL

    engine = LifecycleEngine(PG_URL, create=True)
    recorder: Any = engine.writer.recorder
    pool = recorder.datastore.pool
    assert isinstance(pool, ConnectionPool) and isinstance(pool.kwargs, dict)
    assert pool.kwargs["row_factory"] is dict_row and "dbname=" in pool.conninfo
    conn = pool.getconn()
    try:
        row = conn.execute("SHOW lock_timeout").fetchone()
        assert row is not None and next(iter(row.values())) == f"{engine.store.timeout}s"
    finally:
        pool.putconn(conn)
    for attribute in ("events_table_name", "notification_id_index_name", "channel_name"):
        assert isinstance(getattr(recorder, attribute), str), attribute
    assert isinstance(recorder.datastore.schema, str)
    engine.close()
