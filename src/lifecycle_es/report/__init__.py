"""The HTML report: one self-contained file with the lifecycle's numbers as charts.

Inline CSS and inline SVG only (no script, no font, no CDN): it opens offline in any browser.
It is the file to forward, and it holds only what it shows: the most urgent gaps and the
lowest health scores up to their caps, and a sentence saying how many more there are and
where the full lists are (``lifecycle-es gaps --csv``, ``health --csv``, the web console).
Programs read :func:`report_data` (every number the page is drawn from) or those commands.

The report holds personal data: customer names (``current_stage.name``; an erased customer
reads ``[erased]``, docs/privacy.md).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lifecycle_es.config import Config, load_config
from lifecycle_es.domain.stage_model import CHURNED
from lifecycle_es.reading.lifecycle_checks.facts import CustomerFacts
from lifecycle_es.reading.lifecycle_checks.gaps import KINDS, Gap
from lifecycle_es.reading.metrics import calc
from lifecycle_es.reading.metrics.results import Summary, plain
from lifecycle_es.reading.projection import queries
from lifecycle_es.report.page import render
from lifecycle_es.report.periods import previous_period
from lifecycle_es.report.urgency import act_first, urgency_key

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

#: cohorts shown in the heatmap (the most recent ones)
COHORT_ROWS = 24
#: gap rows in the table (the most urgent ones)
GAP_ROWS = 500
#: health scores in the "lowest scores" table
HEALTH_ROWS = 15

__all__ = ["build_report", "metrics_data", "report_data"]


def report_data(engine: LifecycleEngine, start: datetime, end: datetime, as_of: datetime,
                *, config: Config | None = None) -> dict[str, Any]:
    """Every number of the report: metrics for [start, end), the rest as of ``as_of``; the
    same for the previous period (``previous``, see :mod:`lifecycle_es.report.periods`).
    The read models are caught up once, by the first of its queries."""
    with engine.projections.reading():
        return _report_data(engine, start, end, as_of, config)


def _report_data(engine: LifecycleEngine, start: datetime, end: datetime, as_of: datetime,
                 config: Config | None) -> dict[str, Any]:
    cfg = config or load_config()
    model = engine.stage_model
    metrics = engine.metrics
    facts = engine.customer_facts(as_of)
    names = _names(engine)
    counts = Counter(f.stage for f in facts.values())
    stages = [{"stage": s, "team": model.stage(s).team, "customers": counts.get(s, 0)}
              for s in [*model.names, CHURNED]]
    gaps = _by_urgency(engine.gaps(as_of, config=cfg), facts)  # before health: it reads
    health = engine.health(as_of=as_of, config=cfg)  # some customers' share of the same rows
    bands = Counter(h.band for h in health)
    gap_rows = [_gap_row(g, as_of, facts, names) for g in gaps]
    which, before = previous_period(start, end)
    summary, previous = metrics.summaries([(start, end), (before(start), before(end))])
    data: dict[str, Any] = plain({
        "generated_at": datetime.now(UTC),
        "as_of": as_of,
        "period": {"from": start, "to": end},
        "stage_model": model.name,
        "customers": len(facts),
        "summary": summary.to_dict(),
        "stages": stages,
        **_charted(engine, start, end, as_of),
        "mrr_now": _mrr_now(facts.values()),
        "health": {
            "bands": {b: bands.get(b, 0) for b in ("healthy", "at risk", "critical")},
            "thresholds": cfg.health.bands.model_dump(),
            "customers": [{**h.as_dict(), "name": names.get(h.customer)} for h in health],
        },
        "gaps": {
            "by_kind": {k: sum(1 for g in gaps if g.kind == k) for k in KINDS},
            "rows": gap_rows,
            "first": act_first(gap_rows),
        },
        "previous": {"which": which, **_previous(engine, before(start), before(end),
                                                 before(as_of), previous, cfg)},
        "caps": {"cohort_rows": COHORT_ROWS, "gap_rows": GAP_ROWS, "health_rows": HEALTH_ROWS},
    })
    return data


def metrics_data(engine: LifecycleEngine, start: datetime, end: datetime,
                 as_of: datetime) -> dict[str, Any]:
    """The report's metrics for [start, end) beside the previous period's (the summary),
    with its funnel, MRR and NPS series and cohorts, as plain data (the web console's
    metrics page; charts: :func:`lifecycle_es.report.page.metric_charts`)."""
    which, before = previous_period(start, end)
    summary, previous = engine.metrics.summaries([(start, end), (before(start), before(end))])
    data: dict[str, Any] = plain({
        "period": {"from": start, "to": end},
        "summary": summary.to_dict(),
        "previous": {"which": which, "period": {"from": before(start), "to": before(end)},
                     "summary": previous.to_dict()},
        **_charted(engine, start, end, as_of),
    })
    return data


def _charted(engine: LifecycleEngine, start: datetime, end: datetime,
             as_of: datetime) -> dict[str, Any]:
    """What the charts draw: the funnel of [start, end), the MRR and NPS series of its
    complete months (MRR also at its start, the month before), the cohorts at ``as_of``."""
    metrics = engine.metrics
    first, cutoff = calc.month_start(start), calc.month_start(min(end, as_of))
    cohorts = metrics.cohorts(as_of=as_of)
    return {
        "funnel": metrics.funnel(start, end).to_dict(),
        "mrr": [p.to_dict() for p in metrics.mrr_series(calc.add_months(first, -1), cutoff)]
        if cutoff > first else [],
        "nps": [p.to_dict() for p in metrics.nps_series(first, cutoff)]
        if cutoff > first else [],
        "cohorts": {**cohorts.to_dict(), "rows": [r.to_dict()
                                                  for r in cohorts.rows[-COHORT_ROWS:]],
                    "total": len(cohorts.rows)},
    }


def _names(engine: LifecycleEngine) -> dict[str, str | None]:
    """Customer -> name, as stored now (``[erased]`` after an erasure); the read model is
    caught up first unless the engine's queries do not catch up (``--no-catch-up``)."""
    return queries.customer_names(engine.reader.projections)


def _by_urgency(gaps: list[Gap], facts: dict[str, CustomerFacts]) -> list[Gap]:
    def key(g: Gap) -> tuple[Any, ...]:
        f = facts.get(g.customer)
        return (*urgency_key(g.kind, g.since, f.contract_end if f else None), g.customer,
                g.ref or "")

    return sorted(gaps, key=key)


def _gap_row(g: Gap, as_of: datetime, facts: dict[str, CustomerFacts],
             names: dict[str, str | None]) -> dict[str, Any]:
    """A gap as in ``lifecycle-es gaps --json``, with the customer's name and, for a renewal
    at risk, the contract end and the MRR at stake (minor units)."""
    row = {**g.as_dict(as_of), "name": names.get(g.customer),
           "contract_end": None, "mrr": None, "currency": None}
    f = facts.get(g.customer)
    if g.kind == "renewal_at_risk" and f is not None:
        row.update(contract_end=f.contract_end, mrr=f.mrr, currency=f.currency)
    return row


def _previous(engine: LifecycleEngine, start: datetime, end: datetime, as_of: datetime,
              summary: Summary, cfg: Config) -> dict[str, Any]:
    """The previous period's figures: its metrics (``summary``), and the as-of ones at its
    as-of time."""
    facts = engine.customer_facts(as_of)
    return {
        "period": {"from": start, "to": end},
        "as_of": as_of,
        "customers": len(facts),
        "summary": summary.to_dict(),
        "mrr_now": _mrr_now(facts.values()),
        "open_gaps": len(engine.gaps(as_of, config=cfg)),
    }


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
