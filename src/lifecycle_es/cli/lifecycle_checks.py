"""`lifecycle-es gaps`, `health` and `report`: customers left hanging, health scores, HTML."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lifecycle_es.cli import completion, gap_work
from lifecycle_es.cli.context import NoCatchUp, state
from lifecycle_es.cli.names import with_names
from lifecycle_es.cli.output import (
    DEFAULT_LIMIT,
    All,
    Csv,
    Limit,
    emit,
    one_format,
    plural,
    print_csv,
    print_json,
    say,
    shown_rows,
)
from lifecycle_es.config import ENV_VAR, load_config
from lifecycle_es.errors import LifecycleError
from lifecycle_es.reading.lifecycle_checks.facts import as_utc
from lifecycle_es.reading.lifecycle_checks.gaps import KINDS

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

GAP_COLUMNS = ("customer", "kind", "since", "days_open", "team", "owner", "stage", "detail",
               "ref", "id", "assignee", "snoozed_until", "dismissed")
HEALTH_COLUMNS = ("customer", "score", "band", "stage", "owner")
#: a table's columns (with the customer's name) and which stay on a narrow terminal first
GAP_TABLE = ("customer", "name", "kind", "since", "days_open", "detail", "team", "owner",
             "assignee", "stage", "ref", "id", "snoozed_until", "dismissed")
GAP_PRIORITY = ("customer", "kind", "since", "detail", "name", "days_open", "team", "owner",
                "assignee", "stage", "ref", "id", "snoozed_until", "dismissed")
HEALTH_TABLE = ("customer", "name", "score", "band", "stage", "owner")
#: what --json gives for each factor, in --csv the columns FACTOR.value, FACTOR.points, ...
FACTOR_PARTS = ("value", "points", "weight", "contribution")

ConfigFile = Annotated[str | None, typer.Option(
    "--config", help=f"thresholds and health scorecard (TOML) [env {ENV_VAR}]",
    show_default=False)]
AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="answer as of this time (ISO 8601 date or time, UTC unless an offset "
                    "is given; a date is midnight) [default: now]", show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Customers slipping through the cracks between teams, and the "
                             "work on them (assign, snooze, dismiss).")
    group.callback(invoke_without_command=True)(gaps)  # `gaps` alone lists them
    gap_work.register(group)
    app.add_typer(group, name="gaps")
    app.command("health")(health)
    app.command("report")(report)


def gaps(
    ctx: typer.Context,
    as_of: AsOf = None,
    kind: Annotated[str | None, typer.Option(
        help=f"only this kind: {', '.join(KINDS)}", show_default=False,
        autocompletion=completion.choices(KINDS))] = None,
    team: Annotated[str | None, typer.Option(help="only gaps this team must close",
                                             show_default=False,
                                             autocompletion=completion.TEAMS)] = None,
    owner: Annotated[str | None, typer.Option(
        metavar="NAME", help="only gaps this person must close", show_default=False)] = None,
    assignee: Annotated[str | None, typer.Option(
        metavar="NAME", help="only gaps assigned to this person", show_default=False)] = None,
    include_snoozed: Annotated[bool, typer.Option(
        "--include-snoozed", help="also the gaps snoozed as of --as-of")] = False,
    include_dismissed: Annotated[bool, typer.Option(
        "--include-dismissed", help="also the dismissed gaps")] = False,
    as_json: Json = False, as_csv: Csv = False,
    limit: Limit = DEFAULT_LIMIT, every: All = False,
    config: ConfigFile = None, no_catch_up: NoCatchUp = False,
) -> None:
    """Customers slipping through the cracks between teams, oldest gap first (snoozed and
    dismissed ones left out); `gaps assign|snooze|dismiss GAP_ID` works on one."""
    if ctx.invoked_subcommand is not None:
        return
    at = as_utc(as_of)
    reader = state(ctx).reader(not no_catch_up)
    found = reader.gaps(at, kind, team, config=load_config(config), owner=owner,
                        assignee=assignee, include_snoozed=include_snoozed,
                        include_dismissed=include_dismissed)
    if as_json or as_csv:
        emit([g.as_dict(at) for g in found], GAP_COLUMNS, as_json=as_json, as_csv=as_csv)
        return
    rows = [g.as_dict(at) for g in found[:shown_rows(limit, every)]]
    emit(with_names(reader, rows), GAP_TABLE, total=len(found), priority=GAP_PRIORITY,
         title=f"{plural(len(found), 'gap')} as of {at:%Y-%m-%d %H:%M} UTC")


def health(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="one customer, factor by factor",
                                                 show_default=False)] = None,
    as_of: AsOf = None,
    as_json: Json = False, as_csv: Csv = False,
    limit: Limit = DEFAULT_LIMIT, every: All = False,
    config: ConfigFile = None, no_catch_up: NoCatchUp = False,
) -> None:
    """Health scores 0-100 and why: each factor's value, points, weight and contribution."""
    one_format(as_json, as_csv)
    at = as_utc(as_of)
    reader = state(ctx).reader(not no_catch_up)
    scores = reader.health(customer, at, config=load_config(config))
    if as_json:
        print_json([h.as_dict() for h in scores])
        return
    if as_csv:  # the JSON's fields, each factor's flattened as FACTOR.value, .points, ...
        rows = [flat(h.as_dict()) for h in scores]
        names = list(dict.fromkeys(f.name for h in scores for f in h.factors))  # some off
        print_csv(rows, (*HEALTH_COLUMNS, *(f"{n}.{part}" for n in names
                                            for part in FACTOR_PARTS)))
        return
    if customer is not None:
        h = scores[0]
        rows = [{"factor": f.name, "value": f.value, "points": f.points, "weight": f.weight,
                 "contribution": f.contribution} for f in h.factors]
        emit(rows, ("factor", "value", "points", "weight", "contribution"),
             title=f"{h.customer}: {h.score} ({h.band}) as of {at:%Y-%m-%d %H:%M} UTC, "
                   f"stage {h.stage}, owner {h.owner or '-'}")
        return
    names = [f.name for f in scores[0].factors] if scores else []
    rows = [{**{c: getattr(h, c) for c in HEALTH_COLUMNS},
             **{f.name: f.contribution for f in h.factors}}
            for h in scores[:shown_rows(limit, every)]]
    emit(with_names(reader, rows), (*HEALTH_TABLE, *names), total=len(scores),
         priority=("customer", "score", "band", "name", "stage", "owner", *names),
         title=f"health of {plural(len(scores), 'customer')} as of {at:%Y-%m-%d %H:%M} UTC, "
               "worst first (factor columns: contribution to the score)")


def report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("report.html"),
    start: Annotated[str | None, typer.Option(
        "--from", help="period start (date or time) [default: Jan 1 of the as-of year]",
        show_default=False)] = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="period end, exclusive [default: as-of]", show_default=False)] = None,
    as_of: AsOf = None,
    config: ConfigFile = None, no_catch_up: NoCatchUp = False,
) -> None:
    """Write one self-contained HTML report: stages, funnel, MRR, NPS, cohorts, health, gaps."""
    from lifecycle_es.engine import write_private
    from lifecycle_es.report import build_report

    at = as_utc(as_of)
    t1 = as_utc(end, "to") if end is not None else at
    t0 = as_utc(start, "from") if start is not None else datetime(t1.year, 1, 1, tzinfo=UTC)
    html = build_report(state(ctx).reader(not no_catch_up), t0, t1, at, config=load_config(config))
    try:
        write_private(out, html)  # 0600: it shows customers' names
    except OSError as exc:
        raise LifecycleError(f"--out {str(out)!r}: {exc.strerror}") from None
    say(f"wrote {out} ({len(html) // 1024} KiB): open it in a web browser")


def flat(score: dict[str, Any]) -> dict[str, Any]:
    """A ``health --json`` object as one CSV row: ``factors`` as ``FACTOR.PART`` fields."""
    row = {k: v for k, v in score.items() if k != "factors"}
    for name, parts in score["factors"].items():
        row.update({f"{name}.{part}": value for part, value in parts.items()})
    return row


def print_overview(engine: LifecycleEngine, as_of: datetime | None = None) -> None:
    """This year's metrics, the top gaps and how to get the report (the demo's ending)."""
    from lifecycle_es.cli.metrics import num, pct

    at = as_utc(as_of)
    year = datetime(at.year, 1, 1, tzinfo=UTC)
    s = engine.metrics.summary(year, at)
    rows = [
        {"metric": "paying customers (start -> now)",
         "value": f"{s.paying_at_start} -> {s.paying_at_end}"},
        {"metric": "customer retention rate", "value": pct(s.retention_rate)},
        {"metric": "churn rate", "value": pct(s.churn_rate)},
        *({"metric": f"GRR / NRR ({r.currency})", "value": f"{pct(r.grr)} / {pct(r.nrr)}"}
          for r in s.revenue),
        {"metric": f"NPS ({s.nps.answers} answers)", "value": num(s.nps.score, 1)},
        {"metric": f"CSAT ({s.csat.answers} answers)", "value": pct(s.csat.share)},
    ]
    emit(rows, ("metric", "value"), title=f"This year: {year:%Y-%m-%d} -> {at:%Y-%m-%d}")
    found = engine.gaps(at)
    counts = Counter(g.kind for g in found)
    emit([{"kind": k, "gaps": counts.get(k, 0)} for k in KINDS], ("kind", "gaps"),
         title=f"{plural(len(found), 'gap')} now (lifecycle-es gaps)")
    oldest: dict[str, dict[str, Any]] = {}
    for g in found:  # oldest first
        oldest.setdefault(g.kind, g.as_dict(at))
    emit(list(oldest.values()), ("customer", "kind", "days_open", "team", "owner", "detail"),
         title="the oldest gap of each kind")
    store = engine.store.redacted()
    say(f"report: lifecycle-es --store {store} report --out report.html "
        "(then open report.html in a web browser)")
