"""The public API read models are written on (the built-in ones in ``projections/`` and yours).

``from lifecycle_es.projection import Column, Projection, Table, Tables, on`` — see
docs/projections.md; ``summary(event)`` is the audit trail's one line describing an event
(personal fields left out). The machinery that runs them is the read side's
(``lifecycle_es.reading.projection``); a read model imports only this module, the domain and
the kernel (checked by ``lint-imports``).
"""

from lifecycle_es.reading.audit.records import summary
from lifecycle_es.reading.projection import (
    COLUMN_TYPES,
    Column,
    Projection,
    Rows,
    Table,
    Tables,
    on,
)

__all__ = ["COLUMN_TYPES", "Column", "Projection", "Rows", "Table", "Tables", "on", "summary"]
