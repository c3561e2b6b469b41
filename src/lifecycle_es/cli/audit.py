"""`lifecycle-es audit customer|events|verify`: the audit trail and its tamper evidence."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from lifecycle_es.cli import completion
from lifecycle_es.cli.context import NoCatchUp, state
from lifecycle_es.cli.output import csv_cell, emit, one_format, plural, say
from lifecycle_es.display import money_text as money
from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.reading.audit.records import TIMELINE_COLUMNS

group = typer.Typer(help="Audit trail: timelines, point-in-time state, filtered events, "
                         "tamper check.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="print JSON")]
Csv = Annotated[bool, typer.Option("--csv", help="print CSV")]
TIME_HELP = "ISO 8601 date or datetime (a date is midnight UTC; no offset means UTC)"

TABLE_TIMELINE_COLUMNS = ("version", "type", "occurred_at", "recorded_at", "actor", "team",
                          "fields", "voided")
STATE_COLUMNS = ("customer", "stage", "stage_since", "stage_team", "owner", "owner_team",
                 "paying", "mrr", "currency", "open_handovers", "last_nps", "last_nps_at",
                 "events_applied", "last_version", "as_of", "as_known_at", "version")
EVENT_COLUMNS = ("position", "aggregate", "customer", "campaign", "version", "type", "actor",
                 "team", "occurred_at", "recorded_at", "correlation_id", "causation_id",
                 "summary", "voided_by")
#: which columns of ``audit events`` stay on a narrow terminal first
EVENT_PRIORITY = ("position", "customer", "type", "occurred_at", "summary", "actor", "team",
                  "version", "campaign", "aggregate", "recorded_at", "correlation_id",
                  "causation_id", "voided_by")
BREAK_COLUMNS = ("kind", "aggregate", "key", "version", "position", "detail")


def register(app: typer.Typer) -> None:
    """Add the audit commands to the top-level app."""
    app.add_typer(group, name="audit")


def _text(value: Any, as_json: bool) -> Any:
    """Nested values stay structured in JSON and become compact JSON text (sorted keys, the
    same on every store) elsewhere."""
    if as_json or not isinstance(value, dict | list):
        return value
    return csv_cell(value)


@group.command("customer")
def customer(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(metavar="ID", help="customer external id")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help=f"state from events that happened by then; {TIME_HELP}")] = None,
    as_known_at: Annotated[str | None, typer.Option(
        "--as-known-at", help=f"state from events recorded by then; {TIME_HELP}")] = None,
    version: Annotated[int | None, typer.Option(
        "--version", help="state after the customer's first N events")] = None,
    current: Annotated[bool, typer.Option(
        "--state", help="the current state (all events) instead of the timeline")] = False,
    as_json: Json = False, as_csv: Csv = False,
) -> None:
    """A customer's timeline, or its state (--state, --as-of, --as-known-at, --version)."""
    one_format(as_json, as_csv)
    audit = state(ctx).reader().audit
    if not current and as_of is None and as_known_at is None and version is None:
        rows = [{k: _text(v, as_json) for k, v in asdict(e).items()}
                for e in audit.timeline(customer_id)]
        if as_json or as_csv:
            emit(rows, TIMELINE_COLUMNS, as_json=as_json, as_csv=as_csv)
            return
        for row in rows:
            row["voided"] = (f"VOIDED by v{row['voided_by']}" if row["voided_by"]
                             else f"voids v{row['voids']}" if row["voids"] else "")
        emit(rows, TABLE_TIMELINE_COLUMNS, title=f"customer {customer_id}")
        return
    st = audit.state(customer_id, as_of=as_of, as_known_at=as_known_at, version=version)
    row = {k: _text(v, as_json) for k, v in asdict(st).items()}
    if as_json or as_csv:  # money in integer minor units
        emit([row], STATE_COLUMNS, as_json=as_json, as_csv=as_csv)
    else:
        row["mrr"] = money(row["mrr"], row["currency"])  # the one money format of text
        emit([{"field": c, "value": row[c]} for c in STATE_COLUMNS], ("field", "value"),
             title=f"customer {customer_id}")


@group.command("events")
def events(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="customer external id")] = None,
    actor: Annotated[str | None, typer.Option(help="who did it")] = None,
    team: Annotated[str | None, typer.Option(help="the team the actor acted for",
                                             autocompletion=completion.TEAMS)] = None,
    types: Annotated[list[str] | None, typer.Option(
        "--type", help="event type (repeatable), e.g. stage_changed",
        autocompletion=completion.EVENT_TYPES_COMPLETER)] = None,
    start: Annotated[str | None, typer.Option(
        "--from", help=f"from this time, inclusive; {TIME_HELP}", show_default=False)] = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="up to this time, exclusive (the rule of every period)",
        show_default=False)] = None,
    since: Annotated[str | None, typer.Option(
        help="the same as --from (kept for scripts)", show_default=False)] = None,
    until: Annotated[str | None, typer.Option(
        help="up to this time, INCLUSIVE (kept for scripts; --to is exclusive)",
        show_default=False)] = None,
    recorded: Annotated[bool, typer.Option(
        "--recorded", help="--from/--to bound the recording time, not the business time")]
    = False,
    correlation: Annotated[str | None, typer.Option(help="correlation id")] = None,
    campaign: Annotated[str | None, typer.Option(
        help="campaign id: its events and the touchpoints citing it")] = None,
    limit: Annotated[int, typer.Option(help="events per page")] = 50,
    after: Annotated[str | None, typer.Option(
        help="cursor printed by the previous page (the position of its last row)")] = None,
    order: Annotated[str, typer.Option(help="newest or oldest first", autocompletion=(
        completion.choices(("newest", "oldest"))))] = "newest",
    as_json: Json = False, as_csv: Csv = False, no_catch_up: NoCatchUp = False,
) -> None:
    """Events matching every filter, one page at a time (a cursor, not an offset); the
    period is [--from, --to)."""
    one_format(as_json, as_csv)
    if start is not None and since is not None:
        raise InvalidInput([FieldProblem("--since", since, "give --from or --since, not both")],
                           "options")
    if end is not None and until is not None:
        raise InvalidInput([FieldProblem("--until", until, "give --to (exclusive) or --until "
                                         "(inclusive), not both")], "options")
    page = state(ctx).reader(not no_catch_up).audit.events(
        customer=customer, actor=actor, team=team, types=types, since=start or since,
        until=until, before=end,
        clock="recorded" if recorded else "occurred", correlation_id=correlation,
        campaign=campaign, limit=limit, after=after,
        order=order,  # type: ignore[arg-type]  # validated by Audit.events
    )
    emit([asdict(e) for e in page.events], EVENT_COLUMNS, as_json=as_json, as_csv=as_csv,
         priority=EVENT_PRIORITY)
    if page.next_cursor is not None:
        say(f"next page: --after {page.next_cursor}", err=True)


@group.command("verify")
def verify(
    ctx: typer.Context,
    print_heads: Annotated[bool, typer.Option(
        "--print-heads", help="print the heads to anchor elsewhere, alone on stdout (the "
                              "verdict goes to stderr): POSITION:DIGEST[,settings=SEQ:DIGEST]")]
    = False,
    anchor: Annotated[str | None, typer.Option(
        help="the heads printed earlier by --print-heads: check the store still extends them")]
    = None,
    as_json: Json = False, as_csv: Csv = False,
) -> None:
    """Recompute the hash chains (events, settings); list every break. Exit 1 on any break."""
    one_format(as_json, as_csv)
    report = state(ctx).reader().verify(anchor)
    head = report.anchor()
    if as_json:
        from lifecycle_es.cli.output import print_json

        print_json({"clean": report.clean, "events": report.events, "chained": report.chained,
                    "head": head, "breaks": [asdict(b) for b in report.breaks],
                    "settings": [asdict(c) for c in report.settings]})
    else:
        if report.breaks or as_csv:
            emit([asdict(b) for b in report.breaks], BREAK_COLUMNS, as_csv=as_csv,
                 title="hash chain breaks")
        changes = len(report.settings)
        summary = (f"{plural(report.events, 'event')}, {report.chained:,} chained"
                   + (f", {plural(changes, 'settings change')}" if changes else "") + ": "
                   + ("clean" if report.clean else plural(len(report.breaks), "break")))
        # the verdict is the answer, except beside CSV rows or the heads (alone on stdout,
        # for H=$(lifecycle-es audit verify --print-heads))
        say(summary, err=as_csv or print_heads)
        if print_heads:
            typer.echo(head or "")
    if not report.clean:
        raise typer.Exit(1)
