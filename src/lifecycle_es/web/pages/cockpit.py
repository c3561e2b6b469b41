"""The cockpit (home page): open gaps as work items, most urgent first (the report's order),
filterable by team, owner, kind, segment and "mine", a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.report.urgency import KIND_ORDER, urgency_key
from lifecycle_es.web.auth import Principal, user_of
from lifecycle_es.web.context import Console, blocking, console_of
from lifecycle_es.web.reads import Freshness, Gap, fresh, queries, read_models
from lifecycle_es.web.render import page

PAGE_SIZE = 50
READ_MODELS = ["current_stage", "gaps_facts"]


@dataclass(frozen=True)
class Filters:
    team: str = ""
    owner: str = ""
    kind: str = ""
    segment: str = ""
    mine: bool = False
    page: int = 1

    @classmethod
    def of(cls, request: Request) -> Filters:
        q = request.query_params
        try:
            number = max(1, min(100_000, int(q.get("page") or 1)))
        except ValueError:
            number = 1
        return cls(team=q.get("team", "").strip()[:200], owner=q.get("owner", "").strip()[:200],
                   kind=q.get("kind", "").strip()[:200],
                   segment=q.get("segment", "").strip()[:200],
                   mine=q.get("mine") == "on", page=number)

    def query(self, **changes: Any) -> str:
        values = {**self.__dict__, **changes}
        return urlencode({k: ("on" if v is True else v) for k, v in values.items()
                          if v not in ("", False, None)})


def _check(console: Console, f: Filters) -> None:
    """The kind and team filters, refused as ``lifecycle-es gaps`` refuses them."""
    teams = console.engine.stage_model.teams
    problems = []
    if f.kind and f.kind not in KIND_ORDER:
        problems.append(FieldProblem("kind", f.kind,
                                     f"unknown gap kind (known: {', '.join(KIND_ORDER)})"))
    if f.team and f.team not in teams:
        problems.append(FieldProblem("team", f.team, f"unknown team (known: "
                                                     f"{', '.join(teams)})"))
    if problems:
        raise InvalidInput(problems, "gaps query")


def open_gaps(console: Console) -> tuple[list[Gap], Freshness, datetime]:
    """Every open gap now, most urgent first, with the freshness it was computed at; shared
    by the cockpit's requests for ``Settings.gaps_cache_seconds``."""
    def compute() -> tuple[list[Gap], Freshness, datetime]:
        engine = console.engine
        at = fresh(engine, READ_MODELS)  # before: the gaps include at least this
        now = datetime.now(UTC)
        gaps = engine.gaps(now, config=console.config)
        gaps.sort(key=lambda g: (*urgency_key(g.kind, g.since, None), g.customer,
                                 g.ref or ""))
        return gaps, at, now

    result: tuple[list[Gap], Freshness, datetime] = console.gap_cache.get(compute)
    return result


def work_items(console: Console, user: Principal, f: Filters) -> dict[str, Any]:
    """The gaps of the filters, most urgent first, one page of them with names and money."""
    _check(console, f)
    pm = read_models(console.engine)
    gaps, at, now = open_gaps(console)
    wanted = [g for g in gaps if (not f.kind or g.kind == f.kind)
              and (not f.team or g.team == f.team)
              and (not f.mine or user.name in (g.owner, g.assignee))
              and (not f.owner or g.owner == f.owner)]
    if f.segment:
        of_segment = {r["customer"] for r in queries.current_stages(
            pm, segment=f.segment, catch_up=False)}
        wanted = [g for g in wanted if g.customer in of_segment]
    start = (f.page - 1) * PAGE_SIZE
    shown = wanted[start:start + PAGE_SIZE]
    keys = sorted({g.customer for g in shown})
    rows = queries.current_stages(pm, customers=keys, catch_up=False)
    by_customer = {r["customer"]: r for r in rows}
    items = [{"gap": g, "row": by_customer.get(g.customer, {}),
              "late_seconds": max(0.0, (now - g.since).total_seconds())} for g in shown]
    return {"items": items, "total": len(wanted),
            "pages": max(1, -(-len(wanted) // PAGE_SIZE)), "fresh": at}


async def cockpit(request: Request) -> Response:
    console = console_of(request)
    f = Filters.of(request)
    try:
        found = await blocking(work_items, console, user_of(request), f)
        error = ""
    except InvalidInput as exc:
        found = {"items": [], "total": 0, "pages": 1, "fresh": None}
        error = str(exc)
    return page(request, "cockpit.html", filters=f, error=error, kinds=KIND_ORDER,
                teams=console.engine.stage_model.teams, **found)


def routes() -> list[BaseRoute]:
    return [Route("/", cockpit, methods=["GET"])]
