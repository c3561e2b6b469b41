"""Audit (compliance and admins): events filtered by customer, actor, team, type and time
range, a page at a time; the hash chain's verification on demand, with its time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.errors import InvalidInput
from lifecycle_es.logs import get_logger
from lifecycle_es.web.auth import require, user_of
from lifecycle_es.web.context import Console, blocking, console_of, reading
from lifecycle_es.web.reads import fresh, verify
from lifecycle_es.web.render import page

log = get_logger("lifecycle_es.web")

PAGE_ROWS = 50
FILTERS = ("customer", "actor", "team", "type", "since", "until")


def audit_view(console: Console, filters: dict[str, str], after: str | None) -> dict[str, Any]:
    engine = console.engine
    found = engine.audit.events(
        customer=filters["customer"] or None, actor=filters["actor"] or None,
        team=filters["team"] or None, types=[filters["type"]] if filters["type"] else None,
        since=filters["since"] or None, until=filters["until"] or None, limit=PAGE_ROWS,
        after=after)
    return {"events": found.events, "next_cursor": found.next_cursor,
            "fresh": fresh(engine, ["audit_index"])}


@require("audit")
async def audit(request: Request) -> Response:
    console = console_of(request)
    q = request.query_params
    filters = {name: q.get(name, "").strip()[:200] for name in FILTERS}
    error = ""
    try:
        view = await reading(console, audit_view, console, filters, q.get("after") or None)
    except InvalidInput as exc:
        error = str(exc)
        view = {"events": [], "next_cursor": None, "fresh": None}
    log.info("console.audit_viewed", user=user_of(request).name,
             **{k: v for k, v in filters.items() if v})
    query = urlencode([(k, v) for k, v in q.multi_items() if k != "after"])
    return page(request, "audit.html", filters=filters, error=error, query=query,
                verified=console.last_verify, **view)


@require("audit")
async def run_verify(request: Request) -> Response:
    """Recompute the hash chain now (read only); the audit page shows the result."""
    console = console_of(request)
    report = await blocking(verify, console.engine.reader)
    console.last_verify = (datetime.now(UTC), report)
    log.info("console.audit_verified", user=user_of(request).name, events=report.events,
             breaks=len(report.breaks))
    return RedirectResponse("/audit", 303)


def routes() -> list[BaseRoute]:
    return [Route("/audit", audit, methods=["GET"]),
            Route("/audit/verify", run_verify, methods=["POST"])]
