"""Reading the log aggregate by aggregate (for full rebuilds), on SQLite and PostgreSQL.

``select_notifications`` reads the log in recording order, where one customer's events are
spread over years of other customers' events. A full rebuild of read models whose rows belong
to one aggregate can instead take each aggregate's events together, in version order, through
the primary key ``(originator_id, originator_version)`` that both stores already have.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from lifecycle_es.stores.faults import raised_as_faults

T = TypeVar("T")


#: one event as a rebuild reads it: (notification id, aggregate id as text, version, topic,
#: state); the aggregate id is hex on SQLite (as our recorder writes it), canonical elsewhere
EventRow = tuple[int, str, int, str, bytes]


def select_by_aggregate(recorder: ApplicationRecorder, after: str, stop: int,
                        limit: int) -> list[EventRow]:
    """Up to ``limit`` events with notification id <= ``stop``, of the aggregates whose id
    sorts after ``after`` ('' = from the first), ordered by aggregate id then version.

    The last aggregate of a full page may continue in the next page; see
    :func:`whole_aggregates`.
    """
    return _select(recorder, "originator_id > {}", after, stop, limit)


def rest_of_aggregate(recorder: ApplicationRecorder, last: EventRow,
                      stop: int) -> list[EventRow]:
    """The events of ``last``'s aggregate after it (notification id <= ``stop``)."""
    where = "originator_id = {} AND originator_version > {}"
    return _select(recorder, where, last[1], stop, None, last[2])


def whole_aggregates(recorder: ApplicationRecorder, page: list[EventRow], limit: int,
                     stop: int) -> list[EventRow]:
    """``page`` cut to whole aggregates: a full page drops its last, possibly partial,
    aggregate, unless that is the only one (then the rest of it is read)."""
    if len(page) < limit:
        return page
    last_id = page[-1][1]
    cut = len(page)
    while cut and page[cut - 1][1] == last_id:
        cut -= 1
    if cut:
        return page[:cut]
    return page + rest_of_aggregate(recorder, page[-1], stop)


def aggregate_pages(recorder: ApplicationRecorder, after: str, stop: int,
                    limit: int) -> Generator[tuple[list[EventRow], str], None, None]:
    """Successive pages of whole aggregates after the cursor ``after`` (see
    :func:`select_by_aggregate`), each with the cursor that follows it: the last
    aggregate's id.

    On PostgreSQL the next page is read in a thread (:func:`read_ahead`) while the caller
    works on the current one: the server does the reading. SQLite's reads need the GIL for
    every row, so a thread would only add contention; they run inline.
    """
    pages = _pages(recorder, after, stop, limit)
    return read_ahead(pages) if isinstance(recorder, PostgresApplicationRecorder) else pages


def _pages(recorder: ApplicationRecorder, after: str, stop: int,
           limit: int) -> Generator[tuple[list[EventRow], str], None, None]:
    while rows := whole_aggregates(recorder, select_by_aggregate(recorder, after, stop, limit),
                                   limit, stop):
        after = rows[-1][1]
        yield rows, after


def read_ahead(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """``items``, produced by a thread up to ``depth`` items ahead of the consumer.

    Worth it where producing an item mostly waits outside Python (a PostgreSQL query: the
    server works while the consumer does), not where it needs the GIL. An error in the
    thread is raised in the consumer; closing the generator stops the thread after the item
    it is producing.
    """
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def offer(item: tuple[bool, Any]) -> bool:
        while not stopped.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((True, item)):
                    return
            offer((False, None))
        except BaseException as exc:  # handed to the consumer
            offer((False, exc))

    thread = threading.Thread(target=produce, name="lifecycle-es-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            more, item = ready.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stopped.set()
        thread.join()


def _select(recorder: ApplicationRecorder, where: str, key: str, stop: int,
            limit: int | None, version: int | None = None) -> list[EventRow]:
    store = getattr(recorder, "store", None)  # the chained recorders': faults as StoreError
    if store is None:
        return _select_rows(recorder, where, key, stop, limit, version)
    with raised_as_faults(store):
        return _select_rows(recorder, where, key, stop, limit, version)


def _select_rows(recorder: ApplicationRecorder, where: str, key: str, stop: int,
                 limit: int | None, version: int | None) -> list[EventRow]:
    params: list[Any] = [key] if version is None else [key, version]
    params.append(stop)
    if isinstance(recorder, SQLiteApplicationRecorder):
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM "
               f"{recorder.events_table_name} WHERE {where.format('?', '?')} AND rowid <= ? "
               "ORDER BY originator_id, originator_version")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            rows: list[EventRow] = c.fetchall()
        return rows
    if not isinstance(recorder, PostgresApplicationRecorder):
        return _select_in_memory(recorder, key, stop, limit, version)
    if version is None and not key:
        where, params = "TRUE", params[1:]  # from the first aggregate
    if limit is not None:
        params.append(limit)
    with recorder.datastore.get_connection() as conn, \
            conn.cursor(row_factory=tuple_row) as curs:
        curs.execute(postgres_statement(recorder, where, limit is not None), params)
        return curs.fetchall()


def postgres_statement(recorder: PostgresApplicationRecorder, where: str,
                       limited: bool) -> Composed:
    """The PostgreSQL query of :func:`_select`. It must walk the primary key: the id's text
    is aliased, since ``ORDER BY originator_id`` on a column of that name would sort the
    whole log as text."""
    statement = SQL(
        "SELECT notification_id, originator_id::text AS aggregate, originator_version, "
        "topic, state FROM {schema}.{table} WHERE " + where.format("%s::uuid", "%s") +
        " AND notification_id <= %s ORDER BY originator_id, originator_version"
    ).format(schema=Identifier(recorder.datastore.schema),
             table=Identifier(recorder.events_table_name))
    return statement + SQL(" LIMIT %s") if limited else statement


def _select_in_memory(recorder: ApplicationRecorder, key: str, stop: int, limit: int | None,
                      version: int | None) -> list[EventRow]:
    """The same for the ``memory://`` store (test-sized logs): read all, sort."""
    rows = [(n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(1, max(stop, 1), stop=stop)]
    rows = [r for r in rows if (r[1] > key if version is None
                                else r[1] == key and r[2] > version)]
    rows.sort(key=lambda r: (r[1], r[2]))
    return rows if limit is None else rows[:limit]
