"""What every part of the projection machinery shares: the source's event log, the read
store, the registered read models, their positions, and the event decoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lifecycle_es.errors import StoreError
from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.db import ReadStore
from lifecycle_es.reading.projection.decoding import Decoder
from lifecycle_es.reading.projection.failures import UnknownProjection
from lifecycle_es.reading.projection.registry import discover
from lifecycle_es.reading.projection.state import StateTable
from lifecycle_es.reading.projection.writer import Rows, Tables

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.source import LogSource

DEFAULT_BATCH = 5_000
SHADOW = "__shadow"


class Machinery:
    """The read models of one source and the connection they are kept in."""

    def __init__(self, source: LogSource) -> None:
        self.source = source
        self.log = source.event_log
        self.decode = Decoder(self.log.mapper)
        self.read = ReadStore(source.store)
        self.state = StateTable(self.read)
        self.classes = discover(source.projections_path)
        self.projections: dict[str, Projection] = {
            name: cls(source.stage_model) for name, cls in sorted(self.classes.items())
        }

    @property
    def names(self) -> list[str]:
        return list(self.projections)

    def select(self, names: Sequence[str] | None) -> list[Projection]:
        """The read models called ``names`` (default: all); UnknownProjection names others."""
        if not names:
            return list(self.projections.values())
        unknown = [n for n in names if n not in self.projections]
        if unknown:
            raise UnknownProjection(unknown, self.names)
        return [self.projections[n] for n in dict.fromkeys(names)]

    def head(self) -> int:
        return self.log.head()

    def tables(self, p: Projection, suffix: str, complete: bool) -> Tables:
        """Batched access to the tables of ``p`` (live, or ``suffix`` = SHADOW)."""
        return Tables({t.name: Rows(self.read, t, t.name + suffix, complete)
                       for t in p.tables})

    def writable(self) -> None:
        """Refuse (StoreError) to write the read models of a read-only store."""
        if self.source.store.read_only:
            raise StoreError(f"read store {self.source.store.redacted()!r} is only read: "
                             "read models are caught up and rebuilt on the primary (--store)")
