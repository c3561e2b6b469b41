"""Acting from the console: send, accept or reject a handover, record a check-in or a
touchpoint, change a stage; assign a gap to yourself, snooze or dismiss it;
erase a customer's personal data (compliance and admins, the customer's id typed again).

Each goes through the engine's command methods with the signed-in user as the actor and
their team as the team (never from the form). A refused command shows the CLI's message
next to its field and writes nothing; after a recorded one the server waits (bounded) until
the read models include it, so the next page shows its effect (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import uuid4

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.errors import (
    ECHO_CHARS,
    ConcurrencyConflict,
    InvalidInput,
    InvariantViolation,
    LifecycleError,
    UnknownCampaign,
    UnknownCustomer,
)
from lifecycle_es.logs import get_logger
from lifecycle_es.web.auth import Principal, require, user_of
from lifecycle_es.web.context import Console, blocking, console_of
from lifecycle_es.web.pages.customers import show
from lifecycle_es.web.pages.handovers import DECIDED_VIEW
from lifecycle_es.web.reads import queries, read_models, wait_until_read

log = get_logger("lifecycle_es.web")


def field_problems(exc: LifecycleError) -> dict[str, str]:
    """Field -> the message the CLI prints for it."""
    if isinstance(exc, InvalidInput):
        out: dict[str, str] = {}
        for p in exc.problems:
            out.setdefault(p.field.split(".")[0], str(p))
        return out
    if isinstance(exc, InvariantViolation):
        return {exc.problem.field: str(exc)}
    return {"action": str(exc)}


async def act(request: Request, action: str, target: tuple[str, str],
              command: Callable[..., int], fields: dict[str, Any],
              refused: Callable[[dict[str, str]], Awaitable[Response]]) -> Response:
    """Run ``command`` with the signed-in user as actor and their team as team for
    ``target`` (``("customer", key)`` or ``("campaign", key)``): the target's page with its
    effect (303), 404 for an unknown target, or ``refused(errors)`` (field -> message)."""
    user = user_of(request)
    console = console_of(request)
    what, key = target
    meta = {"at": datetime.now(UTC), "actor": user.name, "team": user.team}
    try:
        await blocking(command, **{what: key, **fields, **meta})
    except (UnknownCustomer, UnknownCampaign) as exc:
        return PlainTextResponse(str(exc), 404)
    except (InvalidInput, InvariantViolation, ConcurrencyConflict) as exc:
        log.info("console.action_refused", user=user.name, action=action,
                 **{what: key[:ECHO_CHARS]}, reason=type(exc).__name__)
        return await refused(field_problems(exc))
    log.info("console.action", user=user.name, action=action, **{what: key})
    customer = key if what == "customer" else None
    lagging = "" if await settled(console, customer) else "&lagging=1"
    return RedirectResponse(f"/{what}s/{quote(key, safe='')}?done={action}{lagging}", 303)


async def _act(request: Request, action: str, command: Callable[..., int],
               fields: dict[str, Any]) -> Response:
    """:func:`act` on the customer of the path; refused: its page with the problems next to
    their fields (422)."""
    async def again(errors: dict[str, str]) -> Response:
        return await show(request, errors=errors, status=422)

    return await act(request, action, ("customer", request.path_params["customer"]),
                     command, fields, again)


async def settled(console: Console, customer: str | None) -> bool:
    """After a recorded command: the server waits (at most ``write_wait_seconds``) until
    the read models include it, then renews the cockpit's gaps of ``customer``; whether
    the read models did include it."""
    read = await blocking(wait_until_read, console.engine,
                          console.settings.write_wait_seconds)
    if read and customer is not None:
        await blocking(console.views.renew_customer, customer)
    return read


def refuse(user: Principal, team: str) -> Response | None:
    if user.may_act_for(team):
        return None
    return PlainTextResponse(f"your role ({user.role}, team {user.team}) may not act for "
                             f"team {team}", 403)


async def check_in(request: Request) -> Response:
    user = user_of(request)
    if (refused := refuse(user, user.team)) is not None:
        return refused
    form = await request.form()
    notes = str(form.get("notes") or "") or None
    return await _act(request, "check-in", console_of(request).engine.check_in,
                      {"notes": notes})


async def change_stage(request: Request) -> Response:
    user = user_of(request)
    if (refused := refuse(user, user.team)) is not None:
        return refused
    form = await request.form()
    return await _act(request, "stage", console_of(request).engine.change_stage,
                      {"to_stage": str(form.get("to_stage") or ""),
                       "reason": str(form.get("reason") or "") or None})


async def touchpoint(request: Request) -> Response:
    user = user_of(request)
    if (refused := refuse(user, user.team)) is not None:
        return refused
    form = await request.form()
    return await _act(request, "touchpoint", console_of(request).engine.touchpoint, {
        "channel": str(form.get("channel") or ""),
        "campaign_id": str(form.get("campaign_id") or "").strip() or None,
        "notes": str(form.get("notes") or "") or None})


def _lines(text: str) -> list[str]:
    """A text area's non-empty lines (a document's list field)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


async def send_handover(request: Request) -> Response:
    """Hand the customer over from the user's team (never the form's) to another one."""
    user = user_of(request)
    if (refused := refuse(user, user.team)) is not None:
        return refused
    form = await request.form()
    document = {key: _lines(str(form.get(key) or "")) for key in ("goals", "risks")}
    return await _act(request, "handover", console_of(request).engine.send_handover, {
        "handover_id": f"h-{uuid4().hex[:12]}", "from_team": user.team,
        "to_team": str(form.get("to_team") or ""),
        "to_person": str(form.get("to_person") or "").strip() or None,
        "document": {**document, "notes": str(form.get("notes") or "") or None}})


async def _handover(request: Request, decision: str) -> Response:
    console = console_of(request)
    user = user_of(request)
    customer = request.path_params["customer"]
    handover = request.path_params["handover"]
    try:
        rows = await blocking(queries.handovers, read_models(console.engine),
                              customer=customer, catch_up=False)
    except LifecycleError as exc:
        return PlainTextResponse(str(exc), 404)
    found = next((r for r in rows if r["handover_id"] == handover), None)
    if found is None:
        return PlainTextResponse(f"handover={handover!r}: no such handover of this customer",
                                 404)
    if (refused := refuse(user, found["to_team"])) is not None:
        return refused
    if decision == "accept":
        response = await _act(request, "accept", console.engine.accept_handover,
                              {"handover_id": handover})
    else:
        form = await request.form()
        response = await _act(request, "reject", console.engine.reject_handover,
                              {"handover_id": handover,
                               "reason": str(form.get("reason") or "")})
    console.views.expire(DECIDED_VIEW)  # the decided list shows it within a second
    return response


async def accept(request: Request) -> Response:
    return await _handover(request, "accept")


async def reject(request: Request) -> Response:
    return await _handover(request, "reject")


async def _on_gap(request: Request, action: str) -> Response:
    """Assign a gap of the customer to the signed-in user, snooze or dismiss it (the form's
    ``gap_id``), for a user who may act for the gap's team."""
    console = console_of(request)
    user = user_of(request)
    form = await request.form()
    gap_id = str(form.get("gap_id") or "")
    try:
        gaps = await blocking(console.engine.gaps, config=console.config,
                              customer=request.path_params["customer"],
                              include_snoozed=True, include_dismissed=True)
    except LifecycleError as exc:
        return PlainTextResponse(str(exc), 404)
    found = next((g for g in gaps if g.id == gap_id), None)
    if found is None:
        return PlainTextResponse(f"gap_id={gap_id[:200]!r}: no such gap of this customer now",
                                 404)
    if (refused := refuse(user, found.team)) is not None:
        return refused
    engine = console.engine
    if action == "assign":
        return await _act(request, "gap assigned", engine.assign_gap,
                          {"gap_id": gap_id, "assignee": user.name})
    reason = str(form.get("reason") or "")
    if action == "snooze":
        return await _act(request, "gap snoozed", engine.snooze_gap, {
            "gap_id": gap_id, "until": str(form.get("until") or ""), "reason": reason})
    return await _act(request, "gap dismissed", engine.dismiss_gap,
                      {"gap_id": gap_id, "reason": reason})


async def assign_gap(request: Request) -> Response:
    return await _on_gap(request, "assign")


async def snooze_gap(request: Request) -> Response:
    return await _on_gap(request, "snooze")


async def dismiss_gap(request: Request) -> Response:
    return await _on_gap(request, "dismiss")


@require("erase")
async def erase(request: Request) -> Response:
    """Erase the customer's personal data (``engine.erase``), once the form repeats the
    customer's id; the page then shows ``[erased]`` wherever a personal field was."""
    user = user_of(request)
    console = console_of(request)
    customer = request.path_params["customer"]
    form = await request.form()
    if str(form.get("confirm") or "").strip() != customer:
        return await show(request, status=422, errors={
            "confirm": f"confirm={str(form.get('confirm') or '')[:200]!r}: type the "
                       f"customer's id, {customer!r}, to erase it"})
    try:
        await blocking(console.engine.erase, customer=customer,
                       reason=str(form.get("reason") or ""), actor=user.name)
    except UnknownCustomer as exc:
        return PlainTextResponse(str(exc), 404)
    except (InvalidInput, InvariantViolation) as exc:
        return await show(request, errors=field_problems(exc), status=422)
    log.info("console.customer_erased", user=user.name, customer=customer)
    await settled(console, customer)
    return RedirectResponse(f"/customers/{quote(customer, safe='')}?done=erase", 303)


def routes() -> list[BaseRoute]:
    base = "/customers/{customer:path}"
    return [
        Route(f"{base}/check-in", check_in, methods=["POST"]),
        Route(f"{base}/stage", change_stage, methods=["POST"]),
        Route(f"{base}/touchpoint", touchpoint, methods=["POST"]),
        Route(f"{base}/handovers", send_handover, methods=["POST"]),
        Route(f"{base}/handovers/{{handover}}/accept", accept, methods=["POST"]),
        Route(f"{base}/handovers/{{handover}}/reject", reject, methods=["POST"]),
        Route(f"{base}/erase", erase, methods=["POST"]),
        Route(f"{base}/gaps/assign", assign_gap, methods=["POST"]),
        Route(f"{base}/gaps/snooze", snooze_gap, methods=["POST"]),
        Route(f"{base}/gaps/dismiss", dismiss_gap, methods=["POST"]),
    ]
