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


class Column(str):
    """A column's portable type with flags: ``Column("text", personal=True)`` holds personal
    data, blanked by the machinery when the customer is erased (see :class:`Table`)."""

    personal: bool

    def __new__(cls, type: str, *, personal: bool = False) -> Column:
        column = super().__new__(cls, type)
        column.personal = personal
        return column


@dataclass(frozen=True)
class Table:
    """A read-model table: columns (name -> portable type), primary key, indexes.

    ``partition`` names the column holding the customer's external id; rows of a customer are
    deleted and re-folded when one of the customer's events is voided. ``personal`` names
    the columns holding personal data (or declare them ``Column(type, personal=True)``):
    when the customer is erased, the machinery blanks them in the customer's rows (text
    reads ``[erased]``, JSON ``{"erased": true}``, other types NULL; NULL stays NULL).
    """

    name: str
    columns: Mapping[str, str]
    key: tuple[str, ...]
    partition: str | None = "customer"
    indexes: tuple[tuple[str, ...], ...] = ()
    doc: Mapping[str, str] = field(default_factory=dict)
    personal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        flagged = [c for c, t in self.columns.items() if getattr(t, "personal", False)]
        object.__setattr__(self, "personal", tuple(dict.fromkeys((*self.personal, *flagged))))
        for col in self.personal:
            if col not in self.columns:
                raise ValueError(f"table {self.name}: personal column {col!r} not declared")
            if col in self.key or col == self.partition:
                raise ValueError(f"table {self.name}: personal column {col!r} is part of "
                                 "the key or the partition (an erased customer's rows "
                                 "must stay addressable)")
            if self.partition is None:
                raise ValueError(f"table {self.name}: personal columns need a partition "
                                 "column (the customer whose erasure blanks them)")
        for col, typ in self.columns.items():
            if typ not in COLUMN_TYPES:
                raise ValueError(f"table {self.name}: column {col}: unknown type {typ!r}")
        for col in (*self.key, *([self.partition] if self.partition else [])):
            if col not in self.columns:
                raise ValueError(f"table {self.name}: key/partition column {col!r} not declared")
