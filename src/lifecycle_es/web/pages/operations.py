"""Operations (admins): the read models' positions, lag, failures and skipped events, the
store kind and the versions."""

from __future__ import annotations

from dataclasses import asdict
from importlib.metadata import version
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.web.auth import require
from lifecycle_es.web.context import Console, blocking, console_of
from lifecycle_es.web.reads import fresh, read_models
from lifecycle_es.web.render import page


def operations_view(console: Console) -> dict[str, Any]:
    engine = console.engine
    pm = read_models(engine)
    return {"models": [asdict(s) for s in pm.status()], "skipped": pm.skipped()[-50:],
            "store": engine.reader.store.redacted(), "kind": engine.reader.store.kind,
            "version": version("lifecycle-es"), "eventsourcing": version("eventsourcing"),
            "read_store": engine.reader is not engine, "fresh": fresh(engine, pm.names)}


@require("operations")
async def operations(request: Request) -> Response:
    view = await blocking(operations_view, console_of(request))
    return page(request, "operations.html", **view)


def routes() -> list[BaseRoute]:
    return [Route("/operations", operations, methods=["GET"])]
