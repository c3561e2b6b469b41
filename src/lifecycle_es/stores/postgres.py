"""PostgreSQL helpers: schema creation and connections (psycopg 3)."""

from __future__ import annotations

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
        if store.password:
            message = message.replace(store.password, "***")
        raise StoreError(f"cannot connect to {store.redacted()}: {message}") from None


def ensure_schema(store: StoreURL) -> None:
    """Create the store's schema if it does not exist yet."""
    if store.schema == "public":
        return
    with connect(store, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(store.schema))
        )
