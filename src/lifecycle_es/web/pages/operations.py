"""Operations (admins): the read models' positions, lag, failures and skipped events, the
store kind and the versions; their row counts from the background views (counted every
minute: a scan of each table)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.web.auth import require
from lifecycle_es.web.context import Console, console_of, reading
from lifecycle_es.web.reads import fresh, read_models
from lifecycle_es.web.render import page

#: the background view of the read models' row counts
ROWS_VIEW = "operations.rows"
#: seconds between two countings of the read models' rows (a scan of every table)
ROWS_SECONDS = 60.0


def count_rows(console: Console) -> None:
    """Count the read models' rows in the background views (``(when, {name: rows})``)."""
    console.views.add(ROWS_VIEW, lambda engine: (datetime.now(UTC), {
        s.name: s.rows for s in read_models(engine).status()}), ROWS_SECONDS)


def operations_view(console: Console) -> dict[str, Any]:
    engine = console.engine
    pm = read_models(engine)
    counted: tuple[datetime, dict[str, int]] | None = console.views.get(ROWS_VIEW)
    models = pm.status(rows=None if counted is None else counted[1])
    return {"models": [asdict(s) for s in models], "skipped": pm.skipped()[-50:],
            "rows_at": None if counted is None else counted[0],
            "store": engine.reader.store.redacted(), "kind": engine.reader.store.kind,
            "version": version("lifecycle-es"), "eventsourcing": version("eventsourcing"),
            "read_store": engine.reader is not engine, "fresh": fresh(engine, pm.names)}


@require("operations")
async def operations(request: Request) -> Response:
    console = console_of(request)
    view = await reading(console, operations_view, console)
    return page(request, "operations.html", **view)


def routes() -> list[BaseRoute]:
    return [Route("/operations", operations, methods=["GET"])]
