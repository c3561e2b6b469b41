"""Customer names beside customer ids in tables (as the report shows them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lifecycle_es.reading.projection import queries

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine


def with_names(reader: LifecycleEngine, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` each with the ``name`` of its ``customer``, read as the query read (caught
    up, unless ``--no-catch-up``: then as they are)."""
    if not rows:
        return []
    names = queries.customer_names(reader.projections,
                                   customers=[r["customer"] for r in rows])
    return [{**r, "name": names.get(r["customer"])} for r in rows]
