"""A read model's table declaration: columns in portable types, key, partition, indexes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: portable column types -> (SQLite, PostgreSQL)
COLUMN_TYPES: dict[str, tuple[str, str]] = {
    "text": ("TEXT", "text"),
    "int": ("INTEGER", "bigint"),
    "real": ("REAL", "double precision"),
    "bool": ("INTEGER", "boolean"),
    "timestamp": ("TEXT", "timestamptz"),  # SQLite: ISO 8601 UTC, sortable as text
    "date": ("TEXT", "date"),
    "json": ("TEXT", "jsonb"),
}


@dataclass(frozen=True)
class Table:
    """A read-model table: columns (name -> portable type), primary key, indexes.

    ``partition`` names the column holding the customer's external id; rows of a customer are
    deleted and re-folded when one of the customer's events is voided.
    """

    name: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    partition: str | None = "customer"
    indexes: tuple[tuple[str, ...], ...] = ()
    doc: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for col, typ in self.columns.items():
            if typ not in COLUMN_TYPES:
                raise ValueError(f"table {self.name}: column {col}: unknown type {typ!r}")
        for col in (*self.key, *([self.partition] if self.partition else [])):
            if col not in self.columns:
                raise ValueError(f"table {self.name}: key/partition column {col!r} not declared")
