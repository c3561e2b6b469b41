"""The cockpit (home page): open gaps as work items, most urgent first (the report's order),
filterable by team, owner, kind, segment and "mine", a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.report.urgency import KIND_ORDER
from lifecycle_es.web.auth import Principal, user_of
from lifecycle_es.web.context import Console, console_of, reading
from lifecycle_es.web.reads import Freshness, Gap, queries, read_models
from lifecycle_es.web.render import page
from lifecycle_es.web.views import OpenGaps, aged

PAGE_SIZE = 50


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


def _selected(console: Console, user: Principal, f: Filters,
              ) -> tuple[int | None, Iterator[Gap], OpenGaps]:
    """How many open gaps the filters keep (None: not counted yet) and them, most urgent
    first, lazily (InvalidInput for a bad filter), from the views' shared list."""
    _check(console, f)
    shared = console.views.open_gaps()  # computed in the background: only filtered here
    counted, wanted = shared.select(f.kind, f.team, f.owner)
    total: int | None = counted
    if f.mine:  # owned by the user or assigned to them
        wanted = (g for g in wanted if user.name in (g.owner, g.assignee))
        total = None
    if f.segment:
        of_segment = {r["customer"] for r in queries.current_stages(
            read_models(console.engine), segment=f.segment, catch_up=False)}
        wanted = (g for g in wanted if g.customer in of_segment)
        total = None
    return total, wanted, shared


def matching_gaps(console: Console, user: Principal, f: Filters,
                  ) -> tuple[list[Gap], Freshness, datetime]:
    """Every open gap of the filters (their page apart), most urgent first, with the
    freshness they were computed at and the time now (InvalidInput for a bad filter)."""
    _, wanted, shared = _selected(console, user, f)
    return list(wanted), shared.fresh, datetime.now(UTC)


def work_items(console: Console, user: Principal, f: Filters) -> dict[str, Any]:
    """The gaps of the filters, most urgent first, one page of them with names and money."""
    pm = read_models(console.engine)
    total, wanted, shared = _selected(console, user, f)
    now = datetime.now(UTC)
    if total is None:
        listed = list(wanted)
        total, wanted = len(listed), iter(listed)
    start = (f.page - 1) * PAGE_SIZE
    shown = list(islice(wanted, start, start + PAGE_SIZE))  # reads up to the page's end
    keys = sorted({g.customer for g in shown})
    rows = queries.current_stages(pm, customers=keys, catch_up=False)
    by_customer = {r["customer"]: r for r in rows}
    items = [{"gap": g, "row": by_customer.get(g.customer, {}),
              "late_seconds": max(0.0, (now - g.since).total_seconds())} for g in shown]
    return {"items": items, "total": total, "pages": max(1, -(-total // PAGE_SIZE)),
            "fresh": aged(shared.fresh, pm.head())}


async def cockpit(request: Request) -> Response:
    console = console_of(request)
    f = Filters.of(request)
    try:
        found = await reading(console, work_items, console, user_of(request), f)
        error = ""
    except InvalidInput as exc:
        found = {"items": [], "total": 0, "pages": 1, "fresh": None}
        error = str(exc)
    return page(request, "cockpit.html", filters=f, error=error, kinds=KIND_ORDER,
                teams=console.engine.stage_model.teams, **found)


def routes() -> list[BaseRoute]:
    return [Route("/", cockpit, methods=["GET"])]
