"""Campaigns: the shared registry (running, upcoming, past) with offer, discount, dates,
target segment and owning team; a campaign's page lists the customers it touched."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.web.context import Console, blocking, console_of
from lifecycle_es.web.reads import fresh, queries, read_models
from lifecycle_es.web.render import page

TOUCHED_ROWS = 200


def _status(row: dict[str, Any], today: Any) -> str:
    if row["ended_at"] is not None and row["ended_at"].date() < today:
        return "ended"
    if row["starts"] > today:
        return "upcoming"
    return "running" if row["ends"] >= today else "past"


def campaigns_view(console: Console) -> dict[str, Any]:
    engine = console.engine
    today = datetime.now(UTC).date()
    rows = [{**r, "status": _status(r, today)}
            for r in queries.campaigns(read_models(engine), catch_up=False)]
    order = {"running": 0, "upcoming": 1, "past": 2, "ended": 2}
    rows.sort(key=lambda r: order[r["status"]])
    return {"campaigns": rows, "fresh": fresh(engine, ["campaigns"])}


def campaign_view(console: Console, campaign: str) -> dict[str, Any] | None:
    engine = console.engine
    today = datetime.now(UTC).date()
    found = [r for r in queries.campaigns(read_models(engine), catch_up=False)
             if r["campaign"] == campaign]
    if not found:
        return None
    touched = engine.audit.events(campaign=campaign, types=["touchpoint"],
                                  limit=TOUCHED_ROWS).events
    return {"c": {**found[0], "status": _status(found[0], today)}, "touched": touched,
            "cap": TOUCHED_ROWS, "fresh": fresh(engine, ["campaigns", "audit_index"])}


#: characters of a refused form's value shown again in its field
SHOWN_CHARS = 10_000


def _again(typed: dict[str, str] | None) -> dict[str, str]:
    """A refused form's values as typed, to fill the form again (cut: the page need not
    echo megabytes; the message next to the field names the full length)."""
    return {k: v[:SHOWN_CHARS] for k, v in (typed or {}).items()}


async def show_campaigns(request: Request, errors: dict[str, str] | None = None,
                         typed: dict[str, str] | None = None, status: int = 200) -> Response:
    """The registry with the announcement form (``errors``: field -> message of a refused
    announcement, ``typed``: its values)."""
    console = console_of(request)
    view = await blocking(campaigns_view, console)
    return page(request, "campaigns.html", errors=errors or {}, typed=_again(typed),
                teams=console.engine.stage_model.teams, status=status, **view)


async def campaigns(request: Request) -> Response:
    return await show_campaigns(request)


async def show_campaign(request: Request, errors: dict[str, str] | None = None,
                        typed: dict[str, str] | None = None, status: int = 200) -> Response:
    """A campaign's page with its amend and end forms (``errors``, ``typed``: a refused
    one's)."""
    key = request.path_params["campaign"]
    view = await blocking(campaign_view, console_of(request), key)
    if view is None:
        return page(request, "message.html", title="Unknown campaign",
                    message=f"campaign={key!r}: no such campaign in the registry", status=404)
    return page(request, "campaign.html", errors=errors or {}, typed=_again(typed),
                done=request.query_params.get("done", ""),
                lagging=request.query_params.get("lagging") == "1", status=status, **view)


async def campaign(request: Request) -> Response:
    return await show_campaign(request)


def routes() -> list[BaseRoute]:
    return [Route("/campaigns", campaigns, methods=["GET"]),
            Route("/campaigns/{campaign:path}", campaign, methods=["GET"])]
