"""The public API read models are written on (the built-in ones in ``projections/`` and yours).

``from lifecycle_es.projection import Column, Projection, Table, Tables, on`` — see
docs/projections.md.
The machinery that runs them is the read side's (``lifecycle_es.reading.projection``).
"""

from lifecycle_es.reading.projection import (
    COLUMN_TYPES,
    Column,
    Projection,
    Rows,
    Table,
    Tables,
    on,
)

__all__ = ["COLUMN_TYPES", "Column", "Projection", "Rows", "Table", "Tables", "on"]
