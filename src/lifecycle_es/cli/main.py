"""Entry point: global options, sub-commands, and one-line errors instead of tracebacks."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from lifecycle_es import logs
from lifecycle_es.cli import audit, lifecycle_checks, metrics, privacy, projections, writing
from lifecycle_es.cli.context import CliState
from lifecycle_es.cli.output import say
from lifecycle_es.errors import LifecycleError, StoreError
from lifecycle_es.stores.url import ENV_VAR as STORE_ENV_VAR
from lifecycle_es.stores.url import redact

app = typer.Typer(
    name="lifecycle-es",
    help="Event-sourced customer lifecycle: record, rebuild read models, audit, measure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Option(
        help="store URL: sqlite:///file.db, postgresql://user@host:port/db, memory:// "
             "(env LIFECYCLE_ES_STORE; default sqlite:///lifecycle.db)")] = None,
    stage_model: Annotated[str | None, typer.Option(
        help="stage model: classic, customer-success or a TOML file "
             "(env LIFECYCLE_ES_STAGE_MODEL)")] = None,
    projections_path: Annotated[list[str] | None, typer.Option(
        help="folder of custom read models (repeatable) "
             "(env LIFECYCLE_ES_PROJECTIONS_PATH)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING, ERROR")] = "WARNING",
) -> None:
    logs.configure(log_level)
    _RUNNING["store"] = store
    ctx.obj = CliState(
        store=store,
        stage_model=stage_model or os.environ.get("LIFECYCLE_ES_STAGE_MODEL"),
        projections_path=projections_path or [],
    )


#: the --store of the command being run, for run()'s error line (only the text: keeping the
#: state would keep its engine, and its connections, alive after the command)
_RUNNING: dict[str, str | None] = {}


def _store_url() -> str | None:
    """The raw store URL of this run (``--store`` or the environment), parsed or not."""
    return _RUNNING.get("store") or os.environ.get(STORE_ENV_VAR)


for _group in (writing, projections, audit, metrics, lifecycle_checks, privacy):
    _group.register(app)


def run() -> None:
    """Console-script entry: user errors print one line and exit non-zero."""
    try:
        # Without standalone mode click *returns* the code of a typer.Exit: pass it on.
        code = app(standalone_mode=False)
    except LifecycleError as exc:
        url = _store_url()
        say(f"error: {exc if url is None else redact(str(exc), url)}", err=True)
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
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
