"""The customer page: stage, owner, health with each factor, money, handovers with their
documents, NPS/CSAT, campaigns touched, the timeline with actor and team, and the state
"as of" a date. Every view is logged (who, which customer, when)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.errors import InvalidInput, LifecycleError, UnknownCustomer
from lifecycle_es.logs import get_logger
from lifecycle_es.web.auth import require, user_of
from lifecycle_es.web.context import Console, blocking, console_of, reading
from lifecycle_es.web.reads import export_json, fresh, queries, read_models
from lifecycle_es.web.render import page

log = get_logger("lifecycle_es.web")

READ_MODELS = ["current_stage", "handover_history", "gaps_facts"]
#: timeline events shown, newest first (the audit page pages through them all)
TIMELINE_ROWS = 100


def customer_view(console: Console, customer: str, as_of: str | None) -> dict[str, Any]:
    """Everything the customer page shows (UnknownCustomer, or InvalidInput for ``as_of``)."""
    engine = console.engine
    pm = read_models(engine)
    row = queries.customer_stage(pm, customer, catch_up=False)
    key = row["customer"]
    health = engine.health(key, config=console.config)
    timeline = engine.audit.timeline(key)
    past = engine.audit.state(key, as_of=as_of) if as_of else None
    answers = [e for e in timeline if e.type in ("nps_answer", "csat_answer") and not e.voided]
    campaigns = sorted({str(e.fields["campaign_id"]) for e in timeline
                        if e.type == "touchpoint" and e.fields.get("campaign_id")})
    model = engine.stage_model
    return {
        "row": row, "health": health[0] if health else None,
        "handovers": queries.handovers(pm, customer=key, catch_up=False),
        "gaps": engine.gaps(config=console.config, customer=key, include_snoozed=True,
                            include_dismissed=True),
        "timeline": timeline[::-1][:TIMELINE_ROWS], "timeline_total": len(timeline),
        "answers": answers, "campaigns": campaigns,
        "past": past, "as_of": as_of or "",
        "targets": model.allowed_targets(row["stage"]) if model.has_stage(row["stage"]) else [],
        "teams": model.teams,
        "chain": _chain_status(console, key),
        "fresh": fresh(engine, READ_MODELS),
        "buying": _buying(console, key),
    }


def _buying(console: Console, customer: str) -> dict[str, Any] | None:
    """The customer's probability alive and expected purchases (BG/NBD, Gamma-Gamma) as
    of today, when it buys without a contract (None: on a contract, no purchases, or no
    model can be fitted)."""
    try:
        prediction = console.engine.predict()
    except LifecycleError:
        return None
    mine = prediction.of(customer)
    if mine is None or mine.on_contract:
        return None
    value = None if mine.expected_value is None else \
        f"{mine.currency} {mine.expected_value:,.2f}"
    return {"p_alive": mine.p_alive, "occasions": mine.expected_occasions, "value": value,
            "as_of": prediction.as_of, "horizon": prediction.horizon_days}


def _chain_status(console: Console, customer: str) -> dict[str, Any] | None:
    """The last verification of the hash chain in this process, and its breaks of this
    customer (None: not verified yet; the audit page verifies)."""
    if console.last_verify is None:
        return None
    at, report = console.last_verify
    mine = [b for b in report.breaks if b.aggregate == "customer" and b.key == customer]
    return {"at": at, "clean": report.clean, "breaks": len(report.breaks), "mine": mine}


async def show(request: Request, errors: dict[str, str] | None = None,
               status: int = 200) -> Response:
    """The customer page (``errors``: field -> message of a refused action)."""
    console = console_of(request)
    customer = request.path_params["customer"]
    as_of = request.query_params.get("as_of") or None
    user = user_of(request)
    try:
        view = await reading(console, customer_view, console, customer, as_of)
    except UnknownCustomer as exc:
        return page(request, "message.html", title="Unknown customer", message=str(exc),
                    status=404)
    except InvalidInput as exc:
        if as_of is None:
            raise
        view = await reading(console, customer_view, console, customer, None)
        errors = {**(errors or {}), "as_of": str(exc)}
    except LifecycleError as exc:
        return page(request, "message.html", title="Cannot show this customer",
                    message=str(exc), status=409)
    log.info("console.customer_viewed", user=user.name, customer=view["row"]["customer"])
    return page(request, "customer.html", errors=errors or {},
                done=request.query_params.get("done", ""),
                lagging=request.query_params.get("lagging") == "1", **view, status=status)


async def customer(request: Request) -> Response:
    return await show(request)


@require("export")
async def export(request: Request) -> Response:
    """The right of access: the customer's data as a JSON download (``engine.audit.export``,
    the same as ``lifecycle-es export``); logged."""
    console = console_of(request)
    customer = request.path_params["customer"]
    try:
        document = await blocking(console.engine.audit.export, customer)
    except UnknownCustomer as exc:
        return PlainTextResponse(str(exc), 404)
    log.info("console.customer_exported", user=user_of(request).name, customer=customer)
    body = export_json(document)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", customer)[:80]
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="customer-{name}.json"'})


def routes() -> list[BaseRoute]:
    return [Route("/customers/{customer:path}/export.json", export, methods=["GET"]),
            Route("/customers/{customer:path}", customer, methods=["GET"])]
