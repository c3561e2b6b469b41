"""`lifecycle-es projections rebuild|run|status|errors` and the `stage` / `handovers` queries."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated, Any

import typer

from lifecycle_es.cli.context import NoCatchUp, state
from lifecycle_es.cli.names import with_names
from lifecycle_es.cli.output import (
    DEFAULT_LIMIT,
    All,
    Csv,
    Limit,
    console,
    duration,
    emit,
    print_json,
    say,
    shown_rows,
)
from lifecycle_es.display import money_text as money
from lifecycle_es.engine import DEFAULT_BATCH, Failure, ProjectionFailed, default_jobs
from lifecycle_es.logs import get_logger
from lifecycle_es.progress import track
from lifecycle_es.reading.projection import queries

group = typer.Typer(help="Build, follow and inspect read models.", no_args_is_help=True)

Names = Annotated[list[str] | None, typer.Argument(
    help="read models (default: all; see 'projections status')", show_default=False)]
BatchSize = Annotated[int, typer.Option(min=1, help="events per transaction")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]
Jobs = Annotated[int, typer.Option(
    min=0, help="processes filling the shadow tables, each a group of read models (0: "
                "min(2, CPUs), or 1 for a log under 20,000 events)")]
SkipFailing = Annotated[bool, typer.Option(
    "--skip-failing", help="record events a read model cannot apply (see 'projections "
                           "errors') and go on past them, instead of stopping that read model")]

#: a table's columns: ``waited`` is how late a handover is (sent to decided, or to now while
#: pending); the priority says which stay on a narrow terminal
HANDOVER_TABLE = ("customer", "name", "handover_id", "from_team", "to_team", "to_person",
                  "status", "sent_at", "waited")
HANDOVER_PRIORITY = ("customer", "sent_at", "waited", "status", "name", "to_team",
                     "handover_id", "to_person", "from_team")
STATUS_COLUMNS = ("name", "state", "version", "stored_version", "position", "head", "lag",
                  "rows", "rebuilt_at", "rebuild_position")
ERROR_COLUMNS = ("model", "position", "event_type", "customer", "error", "skipped_at")
ERROR_JSON_COLUMNS = (*ERROR_COLUMNS, "build")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="projections")
    app.command("stage")(stage)
    app.command("handovers")(handovers)


@group.command("rebuild")
def rebuild(
    ctx: typer.Context, names: Names = None, batch_size: BatchSize = DEFAULT_BATCH,
    json: Json = False, skip_failing: SkipFailing = False, jobs: Jobs = 0,
) -> None:
    """Rebuild read models from the whole log into shadow tables, then swap them in.

    Readers keep the old tables until the swap, which replaces every rebuilt read model in
    one transaction. A killed rebuild resumes on the next run. A read model that fails on
    an event is not swapped in (exit 4); the others are.
    """
    pm = state(ctx).engine().projections
    selected = [p.name for p in pm.select(names)]
    jobs = jobs or default_jobs(pm.head())
    started = time.perf_counter()

    failed: ProjectionFailed | None = None
    try:
        with track("rebuild") as progress:
            done = pm.rebuild(selected, batch_size=batch_size, progress=progress,
                              skip_failing=skip_failing, jobs=jobs)
    except ProjectionFailed as exc:
        failed, done, selected = exc, exc.events, exc.rebuilt
    seconds = time.perf_counter() - started
    result = {"projections": selected, "events": done, "seconds": round(seconds, 3),
              "events_per_s": round(done / seconds) if seconds else 0, "jobs": jobs}
    if failed is not None:
        result["failed"] = [asdict(f) for f in failed.failures]
    if json:
        print_json(result)
    else:
        console.print(f"rebuilt {', '.join(selected) or 'nothing'}: {done} events in "
                      f"{seconds:.2f}s ({result['events_per_s']} events/s)", highlight=False,
                      soft_wrap=True, markup=False)
    if failed is not None:
        raise failed


@group.command("run")
def run(
    ctx: typer.Context, names: Names = None, once: Annotated[bool, typer.Option(
        "--once", help="catch up and exit instead of following new events")] = False,
    batch_size: BatchSize = DEFAULT_BATCH,
    poll: Annotated[float, typer.Option(
        min=0.05, help="seconds between polls (PostgreSQL also wakes on NOTIFY)")] = 2.0,
    skip_failing: SkipFailing = False,
) -> None:
    """Catch read models up with the log, then follow new events (Ctrl-C to stop).

    Several runners may run at once: each read model is advanced by one at a time.
    A read model whose code version changed is refused until it is rebuilt. One that
    fails on an event stops there (logged; retried every 30 s) while the others go on;
    a lost or locked database is retried with back-off.
    """
    pm = state(ctx).engine().projections
    if once:
        done = pm.catch_up(names, batch_size=batch_size, skip_failing=skip_failing)
        console.print(f"caught up: {done} events applied (head {pm.head()})", highlight=False,
                      soft_wrap=True)
        return
    log = get_logger("lifecycle_es.cli")
    log.info("projections.follow", projections=names or pm.names)
    try:
        with _sigterm_as_ctrl_c():
            pm.follow(names, batch_size=batch_size, poll_interval=poll,
                      skip_failing=skip_failing)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM is how a follower is stopped: not an error
        log.info("projections.stopped")


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (how service managers stop a process) stops the block as Ctrl-C does: the
    batch in progress is rolled back, the command exits 0."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler (an embedding host's thread)
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@group.command("status")
def status(ctx: typer.Context, names: Names = None, json: Json = False,
           as_csv: Csv = False) -> None:
    """Per read model: state, versions, position, log head, lag, rows, last rebuild.

    Exits 4 when a read model (or its rebuild) failed on an event: each is described on
    stderr (position, event type, customer, error).
    """
    rows = [asdict(s) for s in state(ctx).reader().projections.status(names)]
    emit(rows, (*STATUS_COLUMNS, "failure", "rebuild_failure") if json or as_csv
         else STATUS_COLUMNS,
         as_json=json, as_csv=as_csv, title="read models")
    failed = [(what, Failure(**row[key])) for row in rows
              for key, what in (("failure", "failed"), ("rebuild_failure", "rebuild failed"))
              if row[key]]
    for what, f in failed:
        who = f", customer {f.customer!r}" if f.customer is not None else ""
        say(f"{f.projection}: {what} at position {f.position} ({f.event_type}{who}) since "
            f"{f.at}: {f.error}", err=True)
    if failed:
        raise typer.Exit(ProjectionFailed.exit_code)


@group.command("errors")
def errors(ctx: typer.Context, names: Names = None, json: Json = False,
           as_csv: Csv = False) -> None:
    """Events read models passed over with --skip-failing (model, position, event type,
    customer, error, when), by model and position."""
    rows = state(ctx).reader().projections.skipped(names)
    emit(rows, ERROR_JSON_COLUMNS if json or as_csv else ERROR_COLUMNS, as_json=json,
         as_csv=as_csv,
         title="events skipped by read models")


def stage(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="one customer's row")] = None,
    json: Json = False, as_csv: Csv = False, no_catch_up: NoCatchUp = False,
) -> None:
    """Current stage of one customer, or the number of customers per stage."""
    pm = state(ctx).reader(not no_catch_up).projections
    if customer is not None:
        row = queries.customer_stage(pm, customer, catch_up=not no_catch_up)
        if not (json or as_csv):
            row = {**row, "mrr": money(row["mrr"], row["currency"])}
        emit([row], queries.STAGE_COLUMNS, as_json=json, as_csv=as_csv, record=True,
             title=f"customer {customer}")
    else:
        rows = queries.stage_counts(pm, catch_up=not no_catch_up)
        emit(rows, queries.COUNT_COLUMNS, as_json=json, as_csv=as_csv,
             title="customers per stage")


def handovers(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="only this customer's")] = None,
    pending: Annotated[bool, typer.Option("--pending", help="only pending ones")] = False,
    older_than: Annotated[str | None, typer.Option(
        help="only those sent more than this long ago: 30m, 12h, 3d, 2w")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="as they stood then: sent by then, decisions after it undone "
                        "(with --pending: pending at that date)")] = None,
    json: Json = False, as_csv: Csv = False,
    limit: Limit = DEFAULT_LIMIT, every: All = False, no_catch_up: NoCatchUp = False,
) -> None:
    """Handovers between teams, oldest first (e.g. --pending --older-than 2d: SLA misses)."""
    from lifecycle_es.reading.lifecycle_checks.facts import as_utc

    age = queries.parse_age(older_than) if older_than is not None else None
    at = as_utc(as_of, "as_of") if as_of is not None else None
    pm = state(ctx).reader(not no_catch_up).projections
    rows = queries.handovers(pm, customer=customer,
                             pending=pending, older_than=age, catch_up=not no_catch_up,
                             as_of=at)
    if json or as_csv:
        emit(rows, queries.HANDOVER_COLUMNS, as_json=json, as_csv=as_csv)
        return
    now = at or datetime.now(UTC)
    shown = [{**r, "waited": waited(r, now)} for r in rows[:shown_rows(limit, every)]]
    emit(with_names(state(ctx).reader(not no_catch_up), shown), HANDOVER_TABLE,
         total=len(rows), priority=HANDOVER_PRIORITY,
         title=("handovers" if at is None else f"handovers as of {at:%Y-%m-%d %H:%M} UTC")
         + " (waited: sent to decided, or to now while pending)")


def waited(row: dict[str, Any], now: datetime) -> str:
    """How long a handover waited: its latency once decided, else its age at ``now``."""
    seconds = row["latency_seconds"]
    if seconds is None:
        sent = row["sent_at"]
        sent = datetime.fromisoformat(sent) if isinstance(sent, str) else sent
        seconds = (now - sent).total_seconds()
    return duration(seconds)
