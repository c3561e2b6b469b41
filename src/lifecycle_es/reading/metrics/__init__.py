"""Lifecycle metrics for any period, answered by SQL over the ``metrics`` and
``stage_history`` read models: ``engine.metrics.summary(...)``, ``.funnel()``, ``.cohorts()``,
``.time_in_stage()``, ``.mrr_series()``, ``.nps_series()``. Definitions: docs/metrics.md.
"""

from lifecycle_es.reading.metrics.results import (
    CohortRow,
    Cohorts,
    Csat,
    Funnel,
    FunnelStage,
    HistoricalClv,
    MrrPoint,
    Nps,
    NpsPoint,
    PredictiveClv,
    RevenueRetention,
    StageSummary,
    StageTime,
    Summary,
    TimeInStage,
)

__all__ = [
    "CohortRow", "Cohorts", "Csat", "Funnel", "FunnelStage", "HistoricalClv", "MrrPoint",
    "Nps", "NpsPoint", "PredictiveClv", "RevenueRetention", "StageSummary", "StageTime",
    "Summary", "TimeInStage",
]
