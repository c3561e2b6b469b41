"""Values and statements as the read-model database takes them: Python values encoded per
dialect and decoded back, ``?`` placeholders in psycopg's style, and which errors are faults
of the database rather than of the event being applied."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import orjson


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a fault of the database or the connection (lost, locked,
    unreachable, timed out) rather than of the event being applied: such a fault is
    retried, never recorded as a read model's failure."""
    import psycopg
    from eventsourcing.persistence import InterfaceError, OperationalError

    from lifecycle_es.errors import StoreError

    return isinstance(exc, (sqlite3.OperationalError, psycopg.OperationalError,
                            psycopg.InterfaceError, OperationalError, InterfaceError,
                            StoreError))


@lru_cache(maxsize=1 << 14)  # a batch's times land in rows of several tables; isoformat is slow
def to_utc_text(value: datetime) -> str:
    """A timestamp as sortable ISO 8601 text in UTC (the SQLite storage format)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def to_utc(value: datetime) -> datetime:
    """A timestamp in UTC (PostgreSQL storage): a time whose UTC form Python cannot hold
    (year 1 at +14:00) raises OverflowError here, on its event, rather than being stored
    as a value no query can read back."""
    return value if value.tzinfo is UTC or value.tzinfo is None else value.astimezone(UTC)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


_SQLITE_ENCODERS: dict[str, Callable[[Any], Any]] = {
    "timestamp": to_utc_text, "date": lambda v: v.isoformat(), "bool": int,
}


#: a string literal or a quoted name: text, whose ``?`` and ``%`` are no placeholders
_QUOTED = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")""")


@lru_cache(maxsize=1024)
def to_format_style(sql: str) -> str:
    """A statement with ``?`` placeholders in psycopg's style: each ``?`` outside string
    literals and quoted names becomes ``%s``, and every ``%`` (which psycopg reads as the
    start of a placeholder, inside literals too) becomes ``%%``."""
    parts = _QUOTED.split(sql)
    for i, part in enumerate(parts):
        part = part.replace("%", "%%")
        parts[i] = part if i % 2 else part.replace("?", "%s")
    return "".join(parts)


def encode(dialect: str, typ: str, value: Any) -> Any:
    """A Python value as the dialect stores a column of portable type ``typ``."""
    if value is None:
        return None
    if typ == "json":
        if dialect == "postgresql":
            from psycopg.types.json import Jsonb

            return Jsonb(value)
        return orjson.dumps(value).decode()
    if dialect == "sqlite":
        if typ == "timestamp":
            return to_utc_text(value)
        if typ == "date":
            return value.isoformat()
        if typ == "bool":
            return int(value)
    elif typ == "timestamp":
        return to_utc(value)
    return value


def encoder(dialect: str, typ: str) -> Callable[[Any], Any] | None:
    """The function :func:`encode` applies to non-NULL values of ``typ`` (None: as is)."""
    if typ == "json":
        if dialect == "postgresql":
            from psycopg.types.json import Jsonb

            return lambda v: Jsonb(v, dumps=_json_text)
        return _json_text
    if dialect == "sqlite":
        return _SQLITE_ENCODERS.get(typ)
    return to_utc if typ == "timestamp" else None


def decode(dialect: str, typ: str, value: Any) -> Any:
    """A stored column value back as Python (datetime, date, bool, dict...)."""
    if value is None or dialect == "postgresql":
        return value
    if typ == "timestamp":
        return datetime.fromisoformat(value)
    if typ == "date":
        return date.fromisoformat(value)
    if typ == "bool":
        return bool(value)
    if typ == "json":
        return orjson.loads(value)
    return value
