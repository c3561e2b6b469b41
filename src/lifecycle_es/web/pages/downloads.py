"""Downloads, each the twin of a page (the same query, rendered as a file): the cockpit's
gaps with its filters, the handovers, and every table of the metrics page, as CSV or JSON.

CSV cells hold the values as the CLI's ``--csv`` does (money in minor units, times in ISO
8601 UTC, shares as fractions), except that a text cell a spreadsheet would run as a
formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is given a
leading ``'`` so it stays text. Every download is logged (who, what).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.logs import get_logger
from lifecycle_es.reading.metrics.results import plain
from lifecycle_es.web.auth import user_of
from lifecycle_es.web.context import Console, blocking, console_of
from lifecycle_es.web.pages.cockpit import Filters, matching_gaps
from lifecycle_es.web.pages.metrics import ROWS, metrics_view, period_of, value_at
from lifecycle_es.web.reads import queries, read_models

log = get_logger("lifecycle_es.web")

#: a table: its rows and its columns
Table = tuple[list[dict[str, Any]], Sequence[str]]
#: the columns of ``lifecycle-es gaps --csv``, with the customer's name
GAP_COLUMNS = ("customer", "name", "kind", "since", "days_open", "team", "owner", "stage",
               "detail", "ref", "id")
HANDOVER_COLUMNS = ("customer", "handover_id", "from_team", "to_team", "from_person",
                    "to_person", "status", "sent_at", "decided_at", "decided_by",
                    "latency_seconds", "days_past_sla")
HANDOVER_STATUSES = ("pending", "accepted", "rejected")
#: what starts a formula in a spreadsheet
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA) else value
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(plain(value))


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def download(request: Request, name: str, fmt: str, table: Table) -> Response:
    """``table`` as the file ``NAME.FMT`` (CSV or a JSON list of objects)."""
    rows, columns = table
    log.info("console.download", user=user_of(request).name, table=name, format=fmt,
             rows=len(rows))
    if fmt == "csv":
        body, media = to_csv(rows, columns), "text/csv; charset=utf-8"
    else:
        body = orjson.dumps([{c: plain(r.get(c)) for c in columns} for r in rows])
        media = "application/json"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


def _format(request: Request) -> str | None:
    fmt = request.path_params["fmt"]
    return fmt if fmt in ("csv", "json") else None


def gaps_table(console: Console, request: Request) -> Table:
    """Every gap of the cockpit's filters (no page), most urgent first, with names."""
    gaps, _, now = matching_gaps(console, user_of(request), Filters.of(request))
    names = queries.customer_names(read_models(console.engine), catch_up=False)
    return [{**g.as_dict(now), "name": names.get(g.customer)} for g in gaps], GAP_COLUMNS


def handovers_table(console: Console, request: Request) -> Table:
    """Every handover (``status``, ``team``: the receiving team, to narrow them), oldest
    first, with the days a pending one is past the SLA."""
    q = request.query_params
    status, team = q.get("status", "").strip(), q.get("team", "").strip()
    teams = console.engine.stage_model.teams
    problems = []
    if status and status not in HANDOVER_STATUSES:
        problems.append(FieldProblem("status", status[:200], f"unknown status (known: "
                                     f"{', '.join(HANDOVER_STATUSES)})"))
    if team and team not in teams:
        problems.append(FieldProblem("team", team[:200], f"unknown team (known: "
                                     f"{', '.join(teams)})"))
    if problems:
        raise InvalidInput(problems, "handovers query")
    sla = timedelta(days=console.config.gaps.handover_sla_days)
    now = datetime.now(UTC)
    rows = [{**r, "days_past_sla": round((now - r["sent_at"] - sla).total_seconds() / 86_400,
                                         2) if r["status"] == "pending" else None}
            for r in queries.handovers(read_models(console.engine), catch_up=False)
            if (not status or r["status"] == status) and (not team or r["to_team"] == team)]
    return rows, HANDOVER_COLUMNS


def _data(console: Console, start: datetime, end: datetime) -> dict[str, Any]:
    """The period's metrics as the page has them (shared with its requests)."""
    data: dict[str, Any] = metrics_view(console, start, end)["data"]
    return data


def _summary(console: Console, start: datetime, end: datetime) -> Table:
    data = _data(console, start, end)
    now, before = data["summary"], data["previous"]["summary"]
    rows = [{"metric": key, "label": label, "period": value_at(now, key),
             "previous": value_at(before, key)} for label, key, _ in ROWS]
    was = {r["currency"]: r for r in before["revenue"]}
    for r in now["revenue"]:
        for key in ("grr", "nrr"):
            rows.append({"metric": f"{key}.{r['currency']}",
                         "label": f"{key.upper()} ({r['currency']})", "period": r[key],
                         "previous": was.get(r["currency"], {}).get(key)})
    return rows, ("metric", "label", "period", "previous")


def _series(key: str, columns: Sequence[str]) -> Callable[[Console, datetime, datetime],
                                                          Table]:
    """A table of the page's metrics as they are: ``data[key]`` (a dotted path)."""
    def table(console: Console, start: datetime, end: datetime) -> Table:
        return value_at(_data(console, start, end), key), columns

    return table


def _cohorts(console: Console, start: datetime, end: datetime) -> Table:
    """Every cohort (the page's chart shows the most recent ones)."""
    c = console.engine.metrics.cohorts(as_of=datetime.now(UTC))
    width = max((len(r.shares) for r in c.rows), default=0)
    months = [f"m{k}" for k in range(width)]
    return ([{"cohort": r.cohort, "size": r.size, **dict(zip(months, r.shares, strict=False))}
             for r in c.rows], ("cohort", "size", *months))


def _time_in_stage(console: Console, start: datetime, end: datetime) -> Table:
    """Stays of the period, as of its end (or now, for a period not over yet)."""
    t = console.engine.metrics.time_in_stage(start, end, min(end, datetime.now(UTC)))
    return ([s.to_dict() for s in t.stages],
            ("stage", "completed", "median_days", "p90_days", "open", "open_median_days",
             "open_p90_days"))


#: the metrics page's tables: name -> the table of a period
METRIC_TABLES: dict[str, Callable[[Console, datetime, datetime], Table]] = {
    "summary": _summary,
    "funnel": _series("funnel.stages", ("stage", "team", "reached", "entered", "skipped",
                                        "conversion_to_next", "median_days_to_next",
                                        "to_next_samples")),
    "mrr": _series("mrr", ("month", "currency", "mrr", "paying")),
    "nps": _series("nps", ("month", "score", "answers", "promoters", "detractors")),
    "cohorts": _cohorts,
    "time-in-stage": _time_in_stage,
}


def metrics_table(console: Console, request: Request) -> Table:
    start, end = period_of(request)
    return METRIC_TABLES[request.path_params["table"]](console, start, end)


async def _serve(request: Request, name: str,
                 table: Callable[[Console, Request], Table]) -> Response:
    fmt = _format(request)
    if fmt is None:
        return PlainTextResponse("no such download (csv or json)", 404)
    try:
        found = await blocking(table, console_of(request), request)
    except InvalidInput as exc:
        return PlainTextResponse(str(exc), 400)
    return download(request, name, fmt, found)


async def gaps(request: Request) -> Response:
    return await _serve(request, "gaps", gaps_table)


async def handovers(request: Request) -> Response:
    return await _serve(request, "handovers", handovers_table)


async def metrics(request: Request) -> Response:
    name = request.path_params["table"]
    if name not in METRIC_TABLES:
        return PlainTextResponse(f"table={name[:80]!r}: no such table of the metrics (known: "
                                 f"{', '.join(METRIC_TABLES)})", 404)
    return await _serve(request, f"metrics-{name}", metrics_table)


def routes() -> list[BaseRoute]:
    return [Route("/gaps.{fmt}", gaps, methods=["GET"]),
            Route("/handovers.{fmt}", handovers, methods=["GET"]),
            Route("/metrics/{table}.{fmt}", metrics, methods=["GET"])]
