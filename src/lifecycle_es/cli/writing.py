"""Writing commands: ``import`` (JSON Lines, all or nothing) and ``demo``."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import console, err_console, plural, print_json, say
from lifecycle_es.engine import DEFAULT_WRITE_BATCH
from lifecycle_es.errors import InvalidInput, LifecycleError

MAX_SHOWN = 50


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("demo")(demo)
    app.command("init")(init)


def init(
    ctx: typer.Context,
    read_models: Annotated[bool, typer.Option(
        "--read-models/--no-read-models",
        help="also create the read models (--no-read-models: the event store only, for a "
             "role that owns the events schema while another owns the read schema)")] = True,
) -> None:
    """Create an empty store (events, settings, read models); other reading commands refuse
    a store that does not exist yet."""
    engine = state(ctx).engine(create=True)
    if read_models:
        engine.projections.catch_up()
    console.print(f"store {engine.store.redacted()} ready", highlight=False, markup=False,
                  soft_wrap=True)


def import_(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(
        help="JSON Lines file of commands, or - for stdin; a CSV file with --mapping")],
    mapping: Annotated[str | None, typer.Option(
        "--mapping", metavar="FILE",
        help="import FILE as CSV through this mapping (TOML: docs/import.md)")] = None,
    batch_size: Annotated[int, typer.Option(
        min=1, help="events per insert (the import is one transaction)")] = DEFAULT_WRITE_BATCH,
    json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Import commands from JSON Lines (or CSV with --mapping). Any bad line: every problem
    listed, nothing written.

    The store records each import (SHA-256 of the file): the same file again writes nothing.
    """
    engine = state(ctx).engine(create=True)
    try:
        result = engine.import_file(file, batch_size=batch_size, mapping=mapping)
    except OSError as exc:
        raise LifecycleError(f"file={file!r}: {exc.strerror}") from None
    except InvalidInput as exc:
        for problem in exc.problems[:MAX_SHOWN]:
            say(problem, err=True)
        more = len(exc.problems) - MAX_SHOWN
        if more > 0:
            err_console.print(f"... and {more} more problems", highlight=False, soft_wrap=True)
        say(f"error: {plural(len(exc.problems), 'problem')} in {file}; nothing was written",
            err=True)
        raise typer.Exit(2) from None
    if json:
        print_json(vars(result))
    elif result.already_imported is not None:
        console.print(f"{result.already_imported.describe()}: nothing written",
                      highlight=False, markup=False, soft_wrap=True)
    else:
        console.print(
            f"imported {plural(result.commands, 'command')} "
            f"({plural(result.events, 'event')}, "
            f"{plural(result.customers_created, 'new customer')}, "
            f"{plural(result.campaigns_created, 'new campaign')}) in {result.seconds:.2f}s"
        )


def demo(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=1, help="number of customers")] = 500,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same history)")] = 7,
    until: Annotated[str | None, typer.Option(
        help="the history ends just before this date, YYYY-MM-DD "
             "(default: first day of the current UTC month)")] = None,
) -> None:
    """Write a deterministic, realistic multi-year history through the import path."""
    from lifecycle_es.cli.demo import run_demo
    from lifecycle_es.demo import parse_until

    run_demo(state(ctx).engine(create=True), customers=customers, seed=seed,
             until=parse_until(until))
