"""PostgreSQL helpers: schema creation and connections (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from lifecycle_es.errors import StoreError
from lifecycle_es.stores.url import StoreURL


def connect(store: StoreURL, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """A new connection; errors never show the password."""
    try:
        return psycopg.connect(store.psycopg_conninfo(), autocommit=autocommit)
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # raised outside the handler: the driver's error (its context) may quote the password
    raise StoreError(f"cannot connect to {store.redacted()}: {store.scrub(message)}")


@contextmanager
def setup_lock(conn: psycopg.Connection[Any], scope: str) -> Iterator[None]:
    """Hold a session advisory lock while creating schemas and tables.

    PostgreSQL's ``CREATE ... IF NOT EXISTS`` is not safe against itself: two processes
    creating the same schema or table at once fail with "tuple concurrently updated" or a
    duplicate-key error. Everything that creates DDL takes this lock first.
    """
    key = f"lifecycle_es:setup:{scope}"
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


@contextmanager
def prepared_schema(store: StoreURL) -> Iterator[None]:
    """Create the store's schema if needed and keep other processes out of DDL meanwhile.

    The body (the event store's table creation) runs under the same lock.
    """
    with connect(store, autocommit=True) as conn, setup_lock(conn, store.schema):
        ensure_schema(conn, store.schema)
        yield


def ensure_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create ``schema`` unless it exists (checked first: ``CREATE SCHEMA IF NOT EXISTS``
    alone needs CREATE on the database, which a role owning the schema may lack)."""
    if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                        (schema,)).fetchone():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def require_existing(store: StoreURL, events_table: str) -> None:
    """Refuse (StoreError) a store that was never created: a SQLite file that does not
    exist, a PostgreSQL schema without its events table. Creates nothing."""
    if store.kind == "memory":
        return
    missing = f"store {store.redacted()!r} does not exist (create it with `lifecycle-es init`)"
    if store.kind == "sqlite":
        from pathlib import Path

        if store.path != ":memory:" and not Path(store.path).is_file():
            raise StoreError(missing)
        return
    with connect(store, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass(%s)",
                           (f'"{store.schema}"."{events_table}"',)).fetchone()
    if row is None or row[0] is None:
        raise StoreError(missing)
