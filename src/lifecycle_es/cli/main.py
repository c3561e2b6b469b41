"""Entry point: global options, sub-commands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperOption

from lifecycle_es import logs
from lifecycle_es.cli import (
    audit,
    completion,
    export,
    lifecycle_checks,
    metrics,
    notify,
    output,
    predict,
    privacy,
    projections,
    record,
    serve,
    stage_model,
    tokens,
    users,
    writing,
)
from lifecycle_es.cli.context import READ_STORE_ENV, CliState
from lifecycle_es.cli.global_options import GlobalOptionsGroup
from lifecycle_es.cli.output import say
from lifecycle_es.cli.progress import CliReporter
from lifecycle_es.engine import STORE_ENV_VAR, redact
from lifecycle_es.errors import LifecycleError, StoreError
from lifecycle_es.progress import reporting

app = typer.Typer(
    name="lifecycle-es",
    cls=GlobalOptionsGroup,  # --store URL and the other global options after the sub-command too
    help="Event-sourced customer lifecycle: record, rebuild read models, audit, measure.\n\n"
         "Queries (stage, handovers, metrics, funnel, cohorts, time-in-stage, gaps, health, "
         "report, audit, projections status/errors, keys status) first catch the store's "
         "read models up with the log, which writes to the store (--no-catch-up on each "
         "query reads them as they are). With --read-store URL (a replica, a read-only "
         "role) they read there instead: never caught up, no lock, no DDL, and stderr (or "
         "the --json answer) says how far behind the read models are.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: what --help shows for an option without its own metavar, instead of its Python type
_METAVARS = {"int": "N", "float": "X", "Path": "FILE", "str": "TEXT", "list[str]": "TEXT"}

#: metavars by option name, the same wherever the option appears
_OPTION_METAVARS = {
    **dict.fromkeys(("--from", "--to", "--as-of", "--as-known-at", "--since", "--until"),
                    "DATE"),
    **dict.fromkeys(("--customer", "--campaign", "--correlation", "--actor"), "ID"),
    **dict.fromkeys(("--out", "--config"), "FILE"),
    "--older-than": "AGE", "--after": "CURSOR", "--team": "TEAM", "--kind": "KIND",
    "--type": "TYPE",
}


def _metavar(self: TyperOption, ctx: typer.Context) -> str | None:
    """Help shows a flag bare and a value as a word (``N``, ``FILE``), never a type name."""
    if getattr(self, "is_flag", False) or getattr(self, "count", False):
        return None
    if self.metavar is not None:
        return self.metavar
    for opt in self.opts:
        if opt in _OPTION_METAVARS:
            return _OPTION_METAVARS[opt]
    shown = str(self.display_type(ctx) or "").strip("<>")
    return _METAVARS.get(shown, shown.upper() or None)


def _no_type(self: TyperArgument, ctx: typer.Context) -> str | None:
    """An argument's help shows its name (its metavar), not its Python type beside it."""
    return None


TyperOption.display_type_rich = _metavar  # type: ignore[method-assign,assignment]
TyperArgument.display_type_rich = _no_type  # type: ignore[method-assign,assignment]


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _level(value: str) -> str:
    if value.upper() not in LEVELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LEVELS)}")
    return value.upper()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        say(f"lifecycle-es {version('lifecycle-es')}")
        raise typer.Exit()


#: the state of the command being run on a read store, until its end (see _after)
_READING: list[CliState] = []


def _after(*_: object, **__: object) -> None:
    """After a command that succeeded: a query on a read store says how fresh it was."""
    while _READING:
        _READING.pop().show_freshness()


@app.callback(result_callback=_after)
def main(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Option(
        metavar="URL",
        help="store URL: sqlite:///file.db, postgresql://user@host:port/db, memory:// "
             "(env LIFECYCLE_ES_STORE; default sqlite:///lifecycle.db)")] = None,
    read_store: Annotated[str | None, typer.Option(
        metavar="URL",
        help="queries read this store instead (a replica, a read-only role): read only, "
             "never caught up; how far behind its read models are goes to stderr "
             "(--json: a read_models field) (env LIFECYCLE_ES_READ_STORE)")] = None,
    stage_model: Annotated[str | None, typer.Option(
        metavar="NAME|FILE", autocompletion=completion.STAGE_MODELS,
        help="stage model of a new store: classic, customer-success or a TOML file; an "
             "existing store keeps its own (another is an error: `stage-model set` changes "
             "it) (env LIFECYCLE_ES_STAGE_MODEL)")] = None,
    projections_path: Annotated[list[str] | None, typer.Option(
        metavar="DIR",
        help="folder of custom read models (repeatable) "
             "(env LIFECYCLE_ES_PROJECTIONS_PATH)")] = None,
    log_level: Annotated[str, typer.Option(
        metavar="LEVEL", callback=_level,
        help="logs on stderr from this level up: DEBUG, INFO, WARNING or ERROR")] = "WARNING",
    _show_version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_version, is_eager=True,
        help="print the version and exit")] = False,
) -> None:
    logs.configure(log_level)
    ctx.with_resource(reporting(CliReporter()))  # long work shows its progress on stderr
    _RUNNING["store"] = store
    cli_state = CliState(
        store=store,
        stage_model=stage_model or os.environ.get("LIFECYCLE_ES_STAGE_MODEL"),
        projections_path=projections_path or [],
        read_store=read_store or os.environ.get(READ_STORE_ENV) or None,
    )
    ctx.obj = cli_state
    output.json_envelope = cli_state.json_envelope if cli_state.read_store else None
    _READING[:] = [cli_state] if cli_state.read_store else []
    _RUNNING["read_store"] = cli_state.read_store


#: the --store of the command being run, for run()'s error line (only the text: keeping the
#: state would keep its engine, and its connections, alive after the command)
_RUNNING: dict[str, str | None] = {}


def _store_url() -> str | None:
    """The raw store URL of this run (``--store`` or the environment), parsed or not."""
    return _RUNNING.get("store") or os.environ.get(STORE_ENV_VAR)


def _redacted(text: str) -> str:
    """``text`` without the password of the store or of the read store."""
    for url in (_store_url(), _RUNNING.get("read_store")):
        if url is not None:
            text = redact(text, url)
    return text


for _group in (writing, projections, audit, metrics, lifecycle_checks, privacy, stage_model,
               export, users, serve, predict, notify, tokens,
               record):
    _group.register(app)


def run() -> None:
    """Console-script entry: user errors print one line and exit non-zero."""
    try:
        # Without standalone mode click *returns* the code of a typer.Exit: pass it on.
        code = app(standalone_mode=False)
    except LifecycleError as exc:
        say(f"error: {_redacted(str(exc))}", err=True)
        sys.exit(getattr(exc, "exit_code", 3 if isinstance(exc, StoreError) else 2))
    except KeyboardInterrupt:
        say("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except typer.BadParameter as exc:  # click usage errors (click.ClickException)
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # any other ClickException
            exc.show()
            sys.exit(exc.exit_code)
        if (line := _store_fault(exc)) is None:
            raise
        say(f"error: {line}", err=True)
        sys.exit(3)
    sys.exit(code if isinstance(code, int) else 0)


def _store_fault(exc: Exception) -> str | None:
    """A driver's error that reached the CLI untranslated (the store layer turns them into
    StoreError: this is the net under it) as the one line of a store fault; None for any
    other error (a bug: its traceback is shown)."""
    from lifecycle_es.engine import StoreURL, store_fault

    try:
        store = StoreURL.parse(_store_url())
    except StoreError:
        store = StoreURL(kind="memory")
    fault = store_fault(exc, store)
    return None if fault is None else _redacted(str(fault))


if __name__ == "__main__":
    run()
