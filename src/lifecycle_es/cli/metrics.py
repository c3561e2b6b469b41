"""`lifecycle-es metrics|funnel|cohorts|time-in-stage`: lifecycle metrics for any period.

Human output is rich tables with rounded numbers; ``--json`` prints the result's stable
``to_dict()`` (rates as floats, money in minor units; see docs/metrics.md).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated, Any

import typer

from lifecycle_es.cli.context import NoCatchUp, state
from lifecycle_es.cli.output import emit, print_json, say
from lifecycle_es.display import money_text as money
from lifecycle_es.reading.metrics.queries import Metrics

From = Annotated[str | None, typer.Option("--from", help="period start, a date YYYY-MM-DD "
                                          "(UTC midnight) or an ISO 8601 time; inclusive")]
To = Annotated[str | None, typer.Option("--to", help="period end (exclusive)")]
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


def metrics(
    ctx: typer.Context,
    from_: Annotated[str, typer.Option("--from", help="period start YYYY-MM-DD (inclusive, "
                                       "UTC) or an ISO 8601 time")],
    to: Annotated[str, typer.Option("--to", help="period end (exclusive)")],
    margin: Annotated[str, typer.Option(help="gross margin for predictive CLV, 0..1")] = "1",
    as_json: Json = False,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Retention, churn, GRR/NRR, NPS, CSAT and CLV for the period [FROM, TO)."""
    s = _metrics(ctx, no_catch_up).summary(from_, to, margin=margin)
    if as_json:
        print_json(s.to_dict())
        return
    period = f"{s.start.isoformat()} .. {s.end.isoformat()} ({num(s.months)} months)"
    emit([
        {"metric": "paying at start (S)", "value": s.paying_at_start},
        {"metric": "paying at end (E)", "value": s.paying_at_end},
        {"metric": "new (N)", "value": s.new},
        {"metric": "churned (of S)", "value": s.churned},
        {"metric": "customer retention rate (E-N)/S", "value": pct(s.retention_rate)},
        {"metric": "churn rate", "value": pct(s.churn_rate)},
        {"metric": f"NPS ({s.nps.answers} answers)", "value": num(s.nps.score, 1)},
        {"metric": f"CSAT 4-5 share ({s.csat.answers} answers)", "value": pct(s.csat.share)},
    ], ("metric", "value"), title=f"Metrics {period}")
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


def funnel(ctx: typer.Context, from_: From = None, to: To = None, as_json: Json = False,
           no_catch_up: NoCatchUp = False) -> None:
    """Cumulative stage funnel (skipped stages counted and reported), for a period or ever."""
    f = _metrics(ctx, no_catch_up).funnel(from_, to)
    if as_json:
        print_json(f.to_dict())
        return
    when = "ever" if f.start is None and f.end is None else (
        f"{f.start.isoformat() if f.start else '...'} .. {f.end.isoformat() if f.end else '...'}")
    emit([{"stage": s.stage, "team": s.team, "reached": s.reached, "entered": s.entered,
           "skipped": s.skipped, "conversion to next": pct(s.conversion_to_next),
           "median days to next": num(s.median_days_to_next, 1, "")} for s in f.stages],
         ("stage", "team", "reached", "entered", "skipped", "conversion to next",
          "median days to next"), title=f"Funnel ({when}, {f.customers} customers)")


def cohorts(
    ctx: typer.Context,
    activity: Annotated[str, typer.Option(help="paying (cohort by first purchase, paying at "
                                          "month end) or payments (by first payment, paid in "
                                          "the month)")] = "paying",
    as_of: AsOf = None,
    as_json: Json = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV")] = False,
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
    ctx: typer.Context, from_: From = None, to: To = None, as_of: AsOf = None,
    customer: Annotated[str | None, typer.Option(
        help="one customer's stage history instead (entries, cumulative time)")] = None,
    as_json: Json = False, no_catch_up: NoCatchUp = False,
) -> None:
    """Median and p90 days of completed stays per stage, open stays separately."""
    m = _metrics(ctx, no_catch_up)
    if customer is not None:
        hist = m.stage_history(customer, as_of)
        cols = ("stage", "first_entered", "last_entered", "last_exited", "entries",
                "cumulative_days", "in_stage")
        if as_json:
            print_json([h.to_dict() for h in hist])
        else:
            emit([{**h.to_dict(), "cumulative_days": num(h.cumulative_days)} for h in hist],
                 cols, title=f"Stage history of {customer}")
        return
    t = m.time_in_stage(from_, to, as_of)
    if as_json:
        print_json(t.to_dict())
        return
    emit([{"stage": s.stage, "completed": s.completed,
           "median days": num(s.median_days, 1, ""), "p90 days": num(s.p90_days, 1, ""),
           "open": s.open, "open median days": num(s.open_median_days, 1, ""),
           "open p90 days": num(s.open_p90_days, 1, "")} for s in t.stages],
         ("stage", "completed", "median days", "p90 days", "open", "open median days",
          "open p90 days"), title=f"Time in stage (as of {t.as_of.isoformat()})")
