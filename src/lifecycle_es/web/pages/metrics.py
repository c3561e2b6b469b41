"""Metrics: any period with the previous one beside it; the report's funnel, MRR, NPS and
cohort charts (``report/svg.py``, drawn in Python: no script)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.report import metrics_data
from lifecycle_es.report.page import metric_charts
from lifecycle_es.web.context import Console, console_of, reading
from lifecycle_es.web.reads import fresh
from lifecycle_es.web.render import page
from lifecycle_es.web.views import aged

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

#: the charts' one inline style (their largest width) goes: the console's CSS sets it, and
#: its Content-Security-Policy allows no inline style
_INLINE_STYLE = re.compile(r' style="[^"]*"')

#: the background view of the default period's metrics
DEFAULT_VIEW = "metrics"

#: what each chart shows, its accessible name (``aria-label``)
LABELS = {"funnel": "Funnel: customers who reached each stage in the period",
          "mrr": "MRR at the end of each month, per currency",
          "nps": "NPS of each month", "cohorts": "Cohort retention by month of first purchase"}

#: rows of the period table: (label, path into the summary, kind)
ROWS = (("Paying at the start", "paying_at_start", "count"),
        ("Paying at the end", "paying_at_end", "count"),
        ("New paying", "new", "count"), ("Churned", "churned", "count"),
        ("Customer retention", "retention_rate", "pct"), ("Churn rate", "churn_rate", "pct"),
        ("NPS", "nps.score", "score"), ("NPS answers", "nps.answers", "count"),
        ("CSAT (satisfied share)", "csat.share", "pct"), ("CSAT answers", "csat.answers",
                                                          "count"))


#: the tables downloadable from the page (``pages/downloads.py``): (name, what it holds)
DOWNLOADS = (("summary", "The figures above, this period and the previous one"),
             ("funnel", "Funnel"), ("mrr", "MRR per month and currency"),
             ("nps", "NPS per month"), ("cohorts", "Cohort retention (every cohort)"),
             ("time-in-stage", "Time in stage (completed and open stays)"))


def _month_start(d: date) -> datetime:
    return datetime(d.year, d.month, 1, tzinfo=UTC)


def period_of(request: Request) -> tuple[datetime, datetime]:
    """``from``/``to`` (ISO dates) or the last twelve complete months."""
    today = datetime.now(UTC).date()
    end = _month_start(today)
    start = end.replace(year=end.year - 1)
    q = request.query_params
    problems = []
    for name in ("from", "to"):
        text = q.get(name, "").strip()
        if not text:
            continue
        try:
            value = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        except ValueError:
            problems.append(FieldProblem(name, text[:40], "not a date (YYYY-MM-DD)"))
            continue
        start, end = (value, end) if name == "from" else (start, value)
    if not problems and end <= start:
        problems.append(FieldProblem("to", end.date().isoformat(), "not after 'from'"))
    if problems:
        raise InvalidInput(problems, "period")
    return start, end


def value_at(summary: dict[str, Any], path: str) -> Any:
    value: Any = summary
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{float(value) * 100:.1f}%"
    if kind == "score":
        return f"{float(value):.1f}"
    return f"{int(value):,}"


def _accessible(name: str, svg: str) -> str:
    """A chart of the report for the console: named for screen readers, no inline style."""
    return _INLINE_STYLE.sub("", svg).replace('role="img"',
                                              f'role="img" aria-label="{LABELS[name]}"')


def metrics_view(console: Console, start: datetime, end: datetime) -> dict[str, Any]:
    """The period's metrics: the default period's from the background views, another's
    computed by one request and shared for ``Settings.metrics_cache_seconds`` (the footer
    gives the position they were read at)."""
    shared = console.views.get(DEFAULT_VIEW)
    if shared is not None and shared[0] == (start, end):
        view: dict[str, Any] = shared[1]
    else:
        view = console.metrics_cache((start, end)).get(lambda: _compute(console, start, end))
    return {**view, "fresh": aged(view["fresh"])}


def share_default_period(console: Console) -> None:
    """Keep the default period's metrics in the background views (as ``(period, view)``)."""
    def compute(engine: LifecycleEngine) -> tuple[tuple[datetime, datetime], dict[str, Any]]:
        period = _period_default()
        return period, _compute(console, *period, engine=engine)

    console.views.add(DEFAULT_VIEW, compute, console.settings.metrics_cache_seconds)


def _compute(console: Console, start: datetime, end: datetime,
             engine: LifecycleEngine | None = None) -> dict[str, Any]:
    """The period's view, read through ``engine`` (default: the console's)."""
    engine = engine or console.engine
    at = fresh(engine, ["metrics"])  # before: the metrics include at least this
    data = metrics_data(engine, start, end, datetime.now(UTC))
    now, before = data["summary"], data["previous"]["summary"]
    rows = [{"label": label, "now": _shown(value_at(now, path), kind),
             "before": _shown(value_at(before, path), kind)} for label, path, kind in ROWS]
    charts = {name: Markup(_accessible(name, svg))  # report/svg.py escapes its text
              for name, svg in metric_charts(data).items()}
    return {"rows": rows, "charts": charts, "previous": data["previous"],
            "revenue": now["revenue"], "fresh": at, "data": data}


async def metrics(request: Request) -> Response:
    console = console_of(request)
    try:
        start, end = period_of(request)
        error = ""
    except InvalidInput as exc:
        error = str(exc)
        start, end = _period_default()
    view = await reading(console, metrics_view, console, start, end)
    return page(request, "metrics.html", start=start.date().isoformat(),
                end=end.date().isoformat(), error=error, downloads=DOWNLOADS, **view)


def _period_default() -> tuple[datetime, datetime]:
    end = _month_start(datetime.now(UTC).date())
    return end.replace(year=end.year - 1), end


def routes() -> list[BaseRoute]:
    return [Route("/metrics", metrics, methods=["GET"])]
