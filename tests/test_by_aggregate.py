"""Reading the log aggregate by aggregate for rebuilds: pages, the PostgreSQL plan,
and the read-ahead thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from projection_gen import write
from psycopg.sql import SQL

from lifecycle_es import LifecycleEngine
from lifecycle_es.stores.by_aggregate import aggregate_pages, postgres_statement, read_ahead


def test_pages_hold_whole_aggregates_and_every_event_once(engine: LifecycleEngine) -> None:
    write(engine, customers=30)
    head = int(engine.writer.recorder.max_notification_id() or 0)
    pages = list(aggregate_pages(engine.writer.recorder, "", head - 5, 7))
    rows = [row for page, _ in pages for row in page]
    assert sorted(r[0] for r in rows) == list(range(1, head - 4))  # up to the bound, once
    assert [(r[1], r[2]) for r in rows] == sorted((r[1], r[2]) for r in rows)
    aggregates = [{r[1] for r in page} for page, _ in pages]
    for i, page_aggs in enumerate(aggregates):  # no aggregate is split over two pages
        assert not page_aggs & set().union(*aggregates[:i], *aggregates[i + 1:])
    assert [cursor for _, cursor in pages] == [page[-1][1] for page, _ in pages]
    cursor = pages[1][1]  # resuming after the second page gives the rest
    assert [p for p, _ in aggregate_pages(engine.writer.recorder, cursor, head - 5, 7)] == [
        p for p, _ in pages[2:]]


def test_postgres_pages_walk_the_primary_key_without_sorting_the_log(
        store_url_factory: Callable[[str], str]) -> None:
    engine = LifecycleEngine(store_url_factory("postgres"))
    try:
        write(engine, customers=5)
        rec = engine.writer.recorder
        assert isinstance(rec, PostgresApplicationRecorder)
        with rec.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SET LOCAL enable_sort = off")  # a needed sort still shows
            plan = "\n".join(str(r) for r in conn.execute(
                SQL("EXPLAIN ") + postgres_statement(rec, "originator_id > {}", True),
                ("00000000-0000-0000-0000-000000000000", 10**6, 5000)).fetchall())
        assert "Sort" not in plan and "pkey" in plan, plan
    finally:
        engine.close()


def test_items_arrive_in_order_produced_by_another_thread() -> None:
    threads = []

    def items() -> Iterator[int]:
        for i in range(100):
            threads.append(threading.current_thread())
            yield i

    assert list(read_ahead(items(), depth=3)) == list(range(100))
    assert threads and all(t is not threading.current_thread() for t in threads)


def test_an_error_in_the_reader_reaches_the_consumer_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("server gone")

    got = []
    with pytest.raises(RuntimeError, match="server gone"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_closing_stops_the_reader_without_reading_on() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    pages = read_ahead(items(), depth=1)
    assert next(pages) == 0
    pages.close()  # a failed batch: the rebuild stops
    assert len(produced) <= 3  # at most the item handed over, the queued one, the pending one
    assert not [t for t in threading.enumerate() if t.name == "lifecycle-es-read-ahead"]
