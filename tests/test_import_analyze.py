"""After a large bulk write on PostgreSQL the event store's tables are ANALYZEd: without
statistics (autovacuum off, or not there yet) the planner made each customer's load a
parallel scan of the whole events table. It never fails the committed import."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.stores.recorders import ChainedPostgresRecorder
from lifecycle_es.stores.url import StoreURL
from lifecycle_es.writing import application

WHO = {"at": "2025-03-01T10:00:00+01:00", "actor": "ann", "team": "sales"}


def _lines(customers: int, check_ins: int) -> list[str]:
    keys = [f"an-{n}" for n in range(customers)]
    return [json.dumps(x) for x in [
        *({"type": "customer_registered", "customer": k, "name": "N", "segment": "smb",
           "source": "web", **WHO} for k in keys),
        *({"type": "check_in", "customer": k, **WHO} for _ in range(check_ins) for k in keys)]]


def _analyzed(url: str) -> dict[str, bool]:
    store = StoreURL.parse(url)
    with psycopg.connect(store.psycopg_conninfo()) as conn:
        rows = conn.execute("SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                            "WHERE schemaname = %s", (store.schema,)).fetchall()
    return {name: done for name, done in rows}


@pytest.mark.postgres
def test_a_large_import_analyzes_the_event_tables(
        store_url_factory: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = store_url_factory("postgres")
    monkeypatch.setattr(application, "ANALYZE_AFTER", 50)
    engine = LifecycleEngine(url, snapshot_every=5)
    try:
        engine.import_lines(_lines(4, 5))  # 24 events: below the threshold
        assert not any(_analyzed(url).values())
        engine.import_lines(_lines(4, 5)[4:] * 3)  # 60 more: over it, and over a tenth
        analyzed = _analyzed(url)
        assert analyzed["lifecycle_events"] and analyzed["event_digests"]
        assert analyzed["lifecycle_snapshots"]
    finally:
        engine.close()


@pytest.mark.postgres
def test_an_analyze_that_fails_does_not_fail_the_import(
        store_url_factory: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = store_url_factory("postgres")
    monkeypatch.setattr(application, "ANALYZE_AFTER", 1)

    def refused(self: ChainedPostgresRecorder, *others: str) -> None:
        raise psycopg.errors.InsufficientPrivilege("must be owner of table lifecycle_events")

    monkeypatch.setattr(ChainedPostgresRecorder, "analyze", refused)
    engine = LifecycleEngine(url)
    try:
        assert engine.import_lines(_lines(3, 2)).events == 9
        assert engine.customer("an-2").version == 3
    finally:
        engine.close()
