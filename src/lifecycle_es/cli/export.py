"""``lifecycle-es export CUSTOMER``: the right of access, everything the store holds about
one customer as JSON (personal fields decrypted). Every export is logged (who, which
customer, when)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import say
from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.reading.audit.records import export_json

log = get_logger("lifecycle_es.privacy")


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(metavar="ID", help="external id of the customer")],
    out: Annotated[Path | None, typer.Option(help="write the JSON here (default: stdout)")]
        = None,
) -> None:
    """Everything the store holds about one customer, personal fields decrypted, as JSON:
    every event with all its fields, and its rows of the read models (docs/privacy.md).
    The answer is personal data: keep it only as long as the request needs."""
    engine = state(ctx).reader()
    data = export_json(engine.audit.export(customer))
    log.info("customer.exported", customer=customer, actor=getpass.getuser())
    if out is None:
        typer.echo(data.decode())
        return
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise LifecycleError(f"out={str(out)!r}: {exc.strerror}") from None
    say(f"exported customer {customer!r} to {out}", err=True)
