"""`lifecycle-es metrics|funnel|cohorts|time-in-stage`: lifecycle metrics for any period.

Human output is rich tables with rounded numbers; ``--json`` prints the result's stable
``to_dict()`` (rates as floats, money in minor units; see docs/metrics.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Annotated, Any

import typer

from lifecycle_es.cli import completion
from lifecycle_es.cli.context import NoCatchUp, state
from lifecycle_es.cli.output import emit, one_format, print_csv, print_json, say
from lifecycle_es.display import money_text as money
from lifecycle_es.reading.lifecycle_checks.facts import as_utc
from lifecycle_es.reading.metrics.queries import Metrics
from lifecycle_es.reading.metrics.results import FunnelStage, StageTime

From = Annotated[str | None, typer.Option(
    "--from", help="period start, a date YYYY-MM-DD (UTC midnight) or an ISO 8601 time; "
                   "inclusive [default: Jan 1 of the year the period ends in]",
    show_default=False)]
To = Annotated[str | None, typer.Option(
    "--to", help="period end, exclusive [default: now, or --as-of]", show_default=False)]
Ever = Annotated[bool, typer.Option(
    "--ever", help="all time instead of a period (the default period is the year to date)")]
Csv = Annotated[bool, typer.Option("--csv", help="print CSV")]
#: the columns of ``metrics --csv``: one row per figure (and currency)
METRIC_COLUMNS = ("start", "end", "metric", "currency", "value")
AsOf = Annotated[str | None, typer.Option("--as-of", help="answer as of this date/time "
                                          "(default: now)")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    """Add the metrics commands to the top-level app."""
    app.command("metrics")(metrics)
    app.command("funnel")(funnel)
    app.command("cohorts")(cohorts)
    app.command("time-in-stage")(time_in_stage)


def _metrics(ctx: typer.Context, no_catch_up: bool) -> Metrics:
    return state(ctx).reader(not no_catch_up).metrics


def pct(value: Fraction | None) -> str:
    """A share as a percentage with two decimals, or 'undefined'."""
    return "undefined" if value is None else f"{float(value) * 100:.2f}%"


def num(value: Fraction | int | None, places: int = 2, none: str = "undefined") -> str:
    """A number rounded for people (thousands separators), or ``none``."""
    return none if value is None else f"{float(value):,.{places}f}"


def period(start: str | None, end: str | None, as_of: str | None = None
           ) -> tuple[datetime, datetime, str]:
    """The period [start, end) of a command and how to say it: given, or the year to date
    as the report takes it (``end`` defaults to ``as_of`` or now, ``start`` to Jan 1 of
    the year the period ends in)."""
    t1 = as_utc(end, "to") if end is not None else as_utc(as_of)
    t0 = (as_utc(start, "from") if start is not None
          else datetime((t1 - timedelta(microseconds=1)).year, 1, 1, tzinfo=UTC))
    said = f"{t0:%Y-%m-%d %H:%M} .. {t1:%Y-%m-%d %H:%M} UTC"
    if start is None and end is None:
        said += ", the year to date (--from/--to for another period)"
    return t0, t1, said


def metric_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``metrics --json`` object as rows of :data:`METRIC_COLUMNS`: each figure (``nps.score``,
    ``revenue.grr`` per currency, ...) on its own row."""
    base = {"start": summary["start"], "end": summary["end"]}
    rows: list[dict[str, Any]] = []
    for name, value in summary.items():
        if name in ("start", "end"):
            continue
        if isinstance(value, dict):
            rows += [{**base, "metric": f"{name}.{k}", "currency": None, "value": v}
                     for k, v in value.items()]
        elif isinstance(value, list):
            rows += [{**base, "metric": f"{name}.{k}", "currency": item["currency"], "value": v}
                     for item in value for k, v in item.items() if k != "currency"]
        else:
            rows.append({**base, "metric": name, "currency": None, "value": value})
    return rows


def metrics(
    ctx: typer.Context,
    from_: From = None, to: To = None,
    margin: Annotated[str, typer.Option(help="gross margin for predictive CLV, 0..1")] = "1",
    as_json: Json = False, as_csv: Csv = False,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Retention, churn, GRR/NRR, NPS, CSAT and CLV for the period [FROM, TO) (default: the
    year to date)."""
    one_format(as_json, as_csv)
    t0, t1, said = period(from_, to)
    s = _metrics(ctx, no_catch_up).summary(from_ or t0, to or t1, margin=margin)
    if as_json:
        print_json(s.to_dict())
        return
    if as_csv:
        print_csv(metric_rows(s.to_dict()), METRIC_COLUMNS)
        return
    period_ = f"{said} ({num(s.months)} months)"
    emit([
        {"metric": "paying at start (S)", "value": s.paying_at_start},
        {"metric": "paying at end (E)", "value": s.paying_at_end},
        {"metric": "new (N)", "value": s.new},
        {"metric": "churned (of S)", "value": s.churned},
        {"metric": "customer retention rate (E-N)/S", "value": pct(s.retention_rate)},
        {"metric": "churn rate", "value": pct(s.churn_rate)},
        {"metric": f"NPS ({s.nps.answers} answers)", "value": num(s.nps.score, 1)},
        {"metric": f"CSAT 4-5 share ({s.csat.answers} answers)", "value": pct(s.csat.share)},
    ], ("metric", "value"), title=f"Metrics {period_}")
    emit([{"currency": r.currency, "customers in S": r.customers,
           "MRR start": money(r.mrr_start, r.currency), "MRR end": money(r.mrr_end, r.currency),
           "GRR": pct(r.grr), "NRR": pct(r.nrr)} for r in s.revenue],
         ("currency", "customers in S", "MRR start", "MRR end", "GRR", "NRR"),
         title="Revenue retention")
    rows: dict[str, dict[str, Any]] = {}
    for h in s.historical_clv:
        rows[h.currency] = {"currency": h.currency, "paying customers": h.customers,
                            "historical mean": money(h.mean, h.currency),
                            "historical median": money(h.median, h.currency)}
    for p in s.predictive_clv:
        rows.setdefault(p.currency, {"currency": p.currency}).update({
            "ARPA": money(p.arpa, p.currency) or "undefined", "margin": num(p.margin),
            "monthly churn": pct(p.monthly_churn_rate),
            "predictive": f"undefined: {p.undefined}" if p.undefined
            else money(p.value, p.currency)})
    emit(list(rows.values()), ("currency", "paying customers", "historical mean",
                               "historical median", "ARPA", "margin", "monthly churn",
                               "predictive"),
         title="Customer lifetime value")


def funnel(ctx: typer.Context, from_: From = None, to: To = None, ever: Ever = False,
           as_json: Json = False, as_csv: Csv = False, no_catch_up: NoCatchUp = False) -> None:
    """Cumulative stage funnel (skipped stages counted and reported) of the customers who
    entered a stage in the period (default: the year to date; --ever: all time)."""
    one_format(as_json, as_csv)
    if ever:
        f, said = _metrics(ctx, no_catch_up).funnel(from_, to), "ever"
    else:
        t0, t1, said = period(from_, to)
        f = _metrics(ctx, no_catch_up).funnel(from_ or t0, to or t1)
    if as_json:
        print_json(f.to_dict())
        return
    if as_csv:
        print_csv([{"start": f.start, "end": f.end, **st} for st in f.to_dict()["stages"]],
                  ("start", "end", *FunnelStage.__dataclass_fields__))
        return
    emit([{"stage": s.stage, "team": s.team, "reached": s.reached, "entered": s.entered,
           "skipped": s.skipped, "conversion to next": pct(s.conversion_to_next),
           "median days to next": num(s.median_days_to_next, 1, "")} for s in f.stages],
         ("stage", "team", "reached", "entered", "skipped", "conversion to next",
          "median days to next"), title=f"Funnel ({said}, {f.customers} customers)")


def cohorts(
    ctx: typer.Context,
    activity: Annotated[str, typer.Option(help="paying (cohort by first purchase, paying at "
                                          "month end) or payments (by first payment, paid in "
                                          "the month)", autocompletion=completion.choices(
                                              ("paying", "payments")))] = "paying",
    as_of: AsOf = None,
    as_json: Json = False,
    as_csv: Csv = False,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Cohort retention by month: share of each cohort active k months later."""
    c = _metrics(ctx, no_catch_up).cohorts(activity, as_of)
    if as_json:
        print_json(c.to_dict())
        return
    width = max((len(r.shares) for r in c.rows), default=0)
    months = [f"m{k}" for k in range(width)]
    if as_csv:
        emit([{"cohort": r.cohort, "size": r.size,
               **{m: float(v) for m, v in zip(months, r.shares, strict=False)}}
              for r in c.rows], ("cohort", "size", *months), as_csv=True)
        return
    if not c.rows:
        say(f"no cohorts before {c.as_of.isoformat()} ({activity})")
        return
    emit([{"cohort": r.cohort, "size": r.size,
           **{m: pct(v) for m, v in zip(months, r.shares, strict=False)}} for r in c.rows],
         ("cohort", "size", *months),
         title=f"Cohorts by {'first purchase' if activity == 'paying' else 'first payment'} "
               f"({activity}; complete months up to {c.last_month})")


def time_in_stage(
    ctx: typer.Context, from_: From = None, to: To = None, ever: Ever = False,
    as_of: AsOf = None,
    customer: Annotated[str | None, typer.Option(
        help="one customer's stage history instead (entries, cumulative time)")] = None,
    as_json: Json = False, as_csv: Csv = False, no_catch_up: NoCatchUp = False,
) -> None:
    """Median and p90 days of the stays per stage completed in the period (default: the
    year to date; --ever: all time), the stays open at --as-of separately."""
    one_format(as_json, as_csv)
    m = _metrics(ctx, no_catch_up)
    if customer is not None:
        hist = m.stage_history(customer, as_of)
        cols = ("stage", "first_entered", "last_entered", "last_exited", "entries",
                "cumulative_days", "in_stage")
        if as_json or as_csv:
            emit([h.to_dict() for h in hist], cols, as_json=as_json, as_csv=as_csv)
        else:
            emit([{**h.to_dict(), "cumulative_days": num(h.cumulative_days)} for h in hist],
                 cols, title=f"Stage history of {customer}")
        return
    if ever:
        t, said = m.time_in_stage(from_, to, as_of), "stays completed ever"
    else:
        t0, t1, said = period(from_, to, as_of)
        t = m.time_in_stage(from_ or t0, to or t1, as_of)
        said = f"stays completed {said}"
    if as_json:
        print_json(t.to_dict())
        return
    if as_csv:
        print_csv([{"start": t.start, "end": t.end, "as_of": t.as_of, **st}
                   for st in t.to_dict()["stages"]],
                  ("start", "end", "as_of", *StageTime.__dataclass_fields__))
        return
    emit([{"stage": s.stage, "completed": s.completed,
           "median days": num(s.median_days, 1, ""), "p90 days": num(s.p90_days, 1, ""),
           "open": s.open, "open median days": num(s.open_median_days, 1, ""),
           "open p90 days": num(s.open_p90_days, 1, "")} for s in t.stages],
         ("stage", "completed", "median days", "p90 days", "open", "open median days",
          "open p90 days"), title=f"Time in stage ({said}; open as of {t.as_of.isoformat()})")
