"""Erasure in every read model: when a customer is erased, the columns its tables declare
personal (``Table(personal=...)`` / ``Column(type, personal=True)``) are blanked in the
customer's rows, after the read model's own handlers of the event, in live tables and in
rebuilds alike, so no read model keeps a copy of an erased name."""

from __future__ import annotations

from typing import Any

from lifecycle_es.privacy import ERASED, erased_document
from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.writer import Tables


def has_personal(p: Projection) -> bool:
    return any(t.personal for t in p.tables)


def placeholder(typ: str) -> Any:
    """What an erased value of portable type ``typ`` reads as."""
    if typ == "text":
        return ERASED
    if typ == "json":
        return erased_document()
    return None


def blank_personal(event: Any, tables: Tables) -> None:
    """The handler the machinery adds for ``Customer.Erased`` to read models with personal
    columns: every row of ``event.customer`` gets those columns blanked."""
    for rows in tables.all():
        table = rows.table
        if not table.personal or table.partition is None:
            continue
        for row in list(rows.where(**{table.partition: event.customer})):
            changes = {c: placeholder(table.columns[c]) for c in table.personal
                       if row[c] is not None}
            if changes:
                rows.update(*(row[k] for k in table.key), **changes)
