"""The API's ``GET`` endpoints: a customer (state, timeline, health), gaps, handovers,
stage counts and the metrics of a period, each with the JSON of the CLI's ``--json``.

They read the read models as they are (the follower keeps them current; requests never
catch up). Query parameters are checked as the CLI's options are: a bad one is a 422 naming
it; an unknown customer is a 404.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lifecycle_es.errors import FieldProblem, InvalidInput, LifecycleError
from lifecycle_es.limits import INT64_MAX
from lifecycle_es.reading.audit.records import TIMELINE_COLUMNS
from lifecycle_es.reading.lifecycle_checks.facts import as_utc
from lifecycle_es.web.api.answers import json_answer, refused
from lifecycle_es.web.context import Console, blocking, console_of
from lifecycle_es.web.reads import queries, read_models

#: the longest query parameter value looked at
PARAM_CHARS = 200


def param(request: Request, name: str) -> str | None:
    """A query parameter (None when absent), at most :data:`PARAM_CHARS` characters."""
    value = request.query_params.get(name)
    if value is not None and (len(value) > PARAM_CHARS or not value.isprintable()):
        raise InvalidInput([FieldProblem(name, value, f"at most {PARAM_CHARS} printable "
                                                      "characters expected")], "query")
    return value


def int_param(request: Request, name: str) -> int | None:
    value = param(request, name)
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= INT64_MAX:
        raise InvalidInput([FieldProblem(name, value, "a whole number from 1 expected")],
                           "query")
    return int(value)


def flag(request: Request, name: str) -> bool:
    value = (param(request, name) or "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidInput([FieldProblem(name, value, "true or false expected")], "query")
    return value in ("true", "1")


def customer_state(console: Console, request: Request) -> Any:
    customer = request.path_params["customer"]
    state = console.engine.audit.state(customer, as_of=param(request, "as_of"),
                                       as_known_at=param(request, "as_known_at"),
                                       version=int_param(request, "version"))
    return asdict(state)


def customer_timeline(console: Console, request: Request) -> Any:
    return [{c: getattr(e, c) for c in TIMELINE_COLUMNS}
            for e in console.engine.audit.timeline(request.path_params["customer"])]


def customer_health(console: Console, request: Request) -> Any:
    at = as_utc(param(request, "as_of"))
    return [h.as_dict() for h in console.engine.health(
        request.path_params["customer"], at, config=console.config)]


def gaps(console: Console, request: Request) -> Any:
    at = as_utc(param(request, "as_of"))
    found = console.engine.gaps(at, param(request, "kind"), param(request, "team"),
                                config=console.config)
    return [g.as_dict(at) for g in found]


def handovers(console: Console, request: Request) -> Any:
    older = param(request, "older_than")
    as_of = param(request, "as_of")
    rows = queries.handovers(
        read_models(console.engine), customer=param(request, "customer"),
        pending=flag(request, "pending"),
        older_than=None if older is None else queries.parse_age(older),
        as_of=None if as_of is None else as_utc(as_of), catch_up=False)
    return [{c: row.get(c) for c in queries.HANDOVER_COLUMNS} for row in rows]


def stages(console: Console, request: Request) -> Any:
    rows = queries.stage_counts(read_models(console.engine), catch_up=False)
    return [{c: row.get(c) for c in queries.COUNT_COLUMNS} for row in rows]


def metrics(console: Console, request: Request) -> Any:
    start, end = param(request, "from"), param(request, "to")
    missing = [FieldProblem(n, None, "required (a date YYYY-MM-DD or an ISO 8601 time)")
               for n, v in (("from", start), ("to", end)) if v is None]
    if missing:
        raise InvalidInput(missing, "query")
    assert start is not None and end is not None
    return console.engine.metrics.summary(start, end,
                                          margin=param(request, "margin") or "1").to_dict()


def _endpoint(read: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        console = console_of(request)
        try:
            return json_answer(await blocking(read, console, request))
        except LifecycleError as exc:
            return refused(exc)

    endpoint.__name__ = read.__name__
    endpoint.__doc__ = read.__doc__
    return endpoint


#: path -> (read, summary); every one is GET
READS: dict[str, tuple[Any, str]] = {
    "/customers/{customer}": (customer_state, "A customer's state now, or as of a time "
                                              "(as `audit customer ID --state --json`)"),
    "/customers/{customer}/timeline": (customer_timeline, "A customer's events in version "
                                                          "order (as `audit customer ID --json`)"),
    "/customers/{customer}/health": (customer_health, "A customer's health, factor by factor "
                                                      "(as `health --customer ID --json`)"),
    "/gaps": (gaps, "Customers left hanging between teams (as `gaps --json`)"),
    "/handovers": (handovers, "Handovers, oldest first (as `handovers --json`)"),
    "/stages": (stages, "Customers per stage (as `stage --json`)"),
    "/metrics": (metrics, "The metrics of a period [from, to) (as `metrics --json`)"),
}

#: path -> its query parameters (name, description), for the OpenAPI description
PARAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "/customers/{customer}": (("as_of", "events that happened by then (ISO 8601)"),
                              ("as_known_at", "events recorded by then (ISO 8601)"),
                              ("version", "the customer's first N events")),
    "/customers/{customer}/health": (("as_of", "ISO 8601 date or time (default: now)"),),
    "/gaps": (("as_of", "ISO 8601 date or time (default: now)"), ("kind", "one gap kind"),
              ("team", "gaps this team must close")),
    "/handovers": (("customer", "one customer's"), ("pending", "true: only pending ones"),
                   ("older_than", "sent more than this long ago: 30m, 12h, 3d"),
                   ("as_of", "as they stood then (ISO 8601)")),
    "/metrics": (("from", "period start, inclusive (required)"),
                 ("to", "period end, exclusive (required)"),
                 ("margin", "gross margin for predictive CLV, 0..1 (default 1)")),
}


def routes() -> list[Route]:
    return [Route(path, _endpoint(read), methods=["GET"]) for path, (read, _) in READS.items()]
