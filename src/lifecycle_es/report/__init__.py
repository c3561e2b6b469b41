"""The HTML report: one self-contained file with the lifecycle's numbers as charts.

Inline CSS and inline SVG only (no script, no font, no CDN): it opens offline in any browser.
Every number shown is also in a JSON data island (``<script type="application/json"
id="report-data">``) for programs and tests.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lifecycle_es.config import Config, load_config
from lifecycle_es.domain.stage_model import CHURNED
from lifecycle_es.reading.lifecycle_checks.facts import reader_for
from lifecycle_es.reading.lifecycle_checks.gaps import KINDS, find_gaps
from lifecycle_es.reading.lifecycle_checks.health import health_scores
from lifecycle_es.reading.metrics import calc
from lifecycle_es.reading.metrics.results import plain
from lifecycle_es.report.page import render

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

#: months of MRR / NPS history shown at least (more when the period is longer)
HISTORY_MONTHS = 12
#: cohorts shown in the heatmap (the most recent ones)
COHORT_ROWS = 24

__all__ = ["build_report", "report_data"]


def report_data(engine: LifecycleEngine, start: datetime, end: datetime, as_of: datetime,
                *, config: Config | None = None) -> dict[str, Any]:
    """Every number of the report: metrics for [start, end), the rest as of ``as_of``."""
    cfg = config or load_config()
    model = engine.stage_model
    metrics = engine.metrics
    facts = reader_for(engine).customers(as_of)
    counts = Counter(f.stage for f in facts.values())
    stages = [{"stage": s, "team": model.stage(s).team, "customers": counts.get(s, 0)}
              for s in [*model.names, CHURNED]]
    last_month = calc.month_start(as_of)  # series cover complete months before as_of
    first = min(calc.month_start(start), calc.add_months(last_month, -HISTORY_MONTHS))
    health = health_scores(engine, as_of=as_of, config=cfg)
    bands = Counter(h.band for h in health)
    gaps = find_gaps(engine, as_of, config=cfg)
    cohorts = metrics.cohorts(as_of=as_of)
    data: dict[str, Any] = plain({
        "generated_at": datetime.now(UTC),
        "as_of": as_of,
        "period": {"from": start, "to": end},
        "stage_model": model.name,
        "customers": len(facts),
        "summary": metrics.summary(start, end).to_dict(),
        "stages": stages,
        "funnel": metrics.funnel(start, end).to_dict(),
        "mrr": [p.to_dict() for p in metrics.mrr_series(first, last_month)],
        "mrr_now": _mrr_now(facts.values()),
        "nps": [p.to_dict() for p in metrics.nps_series(first, last_month)],
        "cohorts": {**cohorts.to_dict(), "rows": [r.to_dict()
                                                  for r in cohorts.rows[-COHORT_ROWS:]]},
        "health": {
            "bands": {b: bands.get(b, 0) for b in ("healthy", "at risk", "critical")},
            "thresholds": cfg.health.bands.model_dump(),
            "customers": [h.as_dict() for h in health],
        },
        "gaps": {
            "by_kind": {k: sum(1 for g in gaps if g.kind == k) for k in KINDS},
            "rows": [g.as_dict(as_of) for g in gaps],
        },
    })
    return data


def _mrr_now(facts: Any) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for f in facts:
        if f.paying:
            totals[f.currency or "?"] += f.mrr
    return dict(sorted(totals.items()))


def build_report(engine: LifecycleEngine, start: datetime, end: datetime, as_of: datetime,
                 *, config: Config | None = None) -> str:
    """The report as one HTML document (see :func:`report_data` for its numbers)."""
    return render(report_data(engine, start, end, as_of, config=config))
