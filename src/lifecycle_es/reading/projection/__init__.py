"""The projection machinery: the API read models are written on, and the runner.

Read models themselves live in the top-level ``projections/`` folder (one module each).
"""

from lifecycle_es.reading.projection.base import COLUMN_TYPES, Column, Projection, Table, on
from lifecycle_es.reading.projection.writer import Rows, Tables

__all__ = ["COLUMN_TYPES", "Column", "Projection", "Rows", "Table", "Tables", "on"]
