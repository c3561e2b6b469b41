"""Handovers: those pending, per receiving team, with the time past the SLA (read on each
request: an indexed page per team); the latest decided ones with their latency (from the
background views, renewed every 10 s)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.web.context import Console, console_of, reading
from lifecycle_es.web.reads import fresh, queries, read_models
from lifecycle_es.web.render import page

HISTORY_ROWS = 100
#: pending handovers shown per team (those most past the SLA; the page gives the count)
PENDING_ROWS = 50
#: the background view of the latest decided handovers, and how often it is renewed
DECIDED_VIEW = "handovers.decided"
DECIDED_SECONDS = 10.0


def share_decided(console: Console) -> None:
    """Keep the latest decided handovers in the background views (``(when, rows)``):
    finding them scans every handover."""
    console.views.add(DECIDED_VIEW, lambda engine: (datetime.now(UTC), queries.decided_handovers(
        read_models(engine), limit=HISTORY_ROWS, catch_up=False)), DECIDED_SECONDS)


def handover_view(console: Console) -> dict[str, Any]:
    engine = console.engine
    pm = read_models(engine)
    now = datetime.now(UTC)
    sla = timedelta(days=console.config.gaps.handover_sla_days)
    pending = {team: (count, [{**r, "late_seconds": (now - r["sent_at"] - sla).total_seconds()}
                              for r in rows])
               for team, (count, rows) in queries.pending_handovers(
                   pm, limit=PENDING_ROWS, catch_up=False).items()}
    decided: tuple[datetime, list[dict[str, Any]]] | None = console.views.get(DECIDED_VIEW)
    if decided is None:  # before the background views' first
        decided = (now, queries.decided_handovers(pm, limit=HISTORY_ROWS, catch_up=False))
    return {"pending": pending, "decided_at": decided[0], "decided": decided[1],
            "sla_days": console.config.gaps.handover_sla_days,
            "fresh": fresh(engine, ["handover_history"])}


async def handovers(request: Request) -> Response:
    console = console_of(request)
    view = await reading(console, handover_view, console)
    return page(request, "handovers.html", **view)


def routes() -> list[BaseRoute]:
    return [Route("/handovers", handovers, methods=["GET"])]
