"""Handovers: those pending, per receiving team, with the time past the SLA; the history
of decided ones with their latency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.web.context import Console, blocking, console_of
from lifecycle_es.web.reads import fresh, queries, read_models
from lifecycle_es.web.render import page

HISTORY_ROWS = 100
#: pending handovers shown per team (those most past the SLA; the page gives the count)
PENDING_ROWS = 100


def handover_view(console: Console) -> dict[str, Any]:
    engine = console.engine
    pm = read_models(engine)
    now = datetime.now(UTC)
    sla = timedelta(days=console.config.gaps.handover_sla_days)
    pending = {team: (count, [{**r, "late_seconds": (now - r["sent_at"] - sla).total_seconds()}
                              for r in rows])
               for team, (count, rows) in queries.pending_handovers(
                   pm, limit=PENDING_ROWS, catch_up=False).items()}
    return {"pending": pending,
            "decided": queries.decided_handovers(pm, limit=HISTORY_ROWS, catch_up=False),
            "sla_days": console.config.gaps.handover_sla_days,
            "fresh": fresh(engine, ["handover_history"])}


async def handovers(request: Request) -> Response:
    view = await blocking(handover_view, console_of(request))
    return page(request, "handovers.html", **view)


def routes() -> list[BaseRoute]:
    return [Route("/handovers", handovers, methods=["GET"])]
