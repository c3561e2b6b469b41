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


def handover_view(console: Console) -> dict[str, Any]:
    engine = console.engine
    pm = read_models(engine)
    now = datetime.now(UTC)
    sla = timedelta(days=console.config.gaps.handover_sla_days)
    rows = queries.handovers(pm, catch_up=False)
    pending: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "pending":
            late = (now - r["sent_at"] - sla).total_seconds()
            pending.setdefault(r["to_team"], []).append({**r, "late_seconds": late})
    for team_rows in pending.values():
        team_rows.sort(key=lambda r: -r["late_seconds"])
    decided = sorted((r for r in rows if r["status"] != "pending"),
                     key=lambda r: r["decided_at"], reverse=True)[:HISTORY_ROWS]
    return {"pending": dict(sorted(pending.items())), "decided": decided,
            "sla_days": console.config.gaps.handover_sla_days,
            "fresh": fresh(engine, ["handover_history"])}


async def handovers(request: Request) -> Response:
    view = await blocking(handover_view, console_of(request))
    return page(request, "handovers.html", **view)


def routes() -> list[BaseRoute]:
    return [Route("/handovers", handovers, methods=["GET"])]
