"""Acting on the campaign registry from the console: announce a campaign, amend it, end it.

Each goes through the engine's command methods (``announce_campaign``, ``amend_campaign``,
``end_campaign``) with the signed-in user as the actor and their team as the team, never
the form's. The owning team of a new campaign is the user's team; a lead (or an admin) may
choose another. Amending or ending a campaign is for those who may act for its owning team.
A refused command shows the import's message next to its field and writes nothing; after a
recorded one the next page shows its effect (read-your-writes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from lifecycle_es.web.auth import user_of
from lifecycle_es.web.context import blocking, console_of
from lifecycle_es.web.pages.actions import act, refuse
from lifecycle_es.web.pages.campaigns import campaign_view, show_campaign, show_campaigns

#: the details of a campaign its forms give (the owning team apart)
DETAILS = ("name", "offer", "discount_percent", "starts", "ends", "segment")
#: an integer as typed (sign and up to 30 digits); anything else goes to the command as text,
#: which refuses it as the import does
_WHOLE = re.compile(r"[+-]?\d{1,30}")


def _value(form: FormData, key: str) -> str:
    return str(form.get(key) or "").strip()


def _discount(text: str) -> int | str:
    return int(text) if _WHOLE.fullmatch(text) else text


def form_values(form: FormData) -> dict[str, str]:
    """The form's fields as typed (stripped)."""
    return {key: _value(form, key) for key in ("campaign", *DETAILS, "owning_team", "reason")}


async def announce(request: Request) -> Response:
    """Announce a campaign owned by the user's team (a lead's choice of team)."""
    user = user_of(request)
    form = await request.form()
    typed = form_values(form)
    owning = typed["owning_team"] or user.team
    if (refused := refuse(user, owning)) is not None:
        return refused
    fields: dict[str, Any] = {key: typed[key] for key in ("campaign", "name", "offer",
                                                          "starts", "ends")}
    fields.update(discount_percent=_discount(typed["discount_percent"] or "0"),
                  segment=typed["segment"] or None, owning_team=owning)

    async def again(errors: dict[str, str]) -> Response:
        return await show_campaigns(request, errors=errors, typed=typed, status=422)

    return await act(request, "announce", ("campaign", fields.pop("campaign")),
                     console_of(request).engine.announce_campaign, fields, again)


async def _owned(request: Request) -> tuple[dict[str, Any], Response | None]:
    """The campaign of the path and, if the user may not act for its owning team (or it is
    unknown), the refusal."""
    key = request.path_params["campaign"]
    view = await blocking(campaign_view, console_of(request), key)
    if view is None:
        return {}, PlainTextResponse(f"campaign={key!r}: no such campaign in the registry",
                                     404)
    return view["c"], refuse(user_of(request), view["c"]["owning_team"])


def _changes(current: dict[str, Any], typed: dict[str, str]) -> dict[str, Any]:
    """The details the form changes (an empty field keeps its value)."""
    out: dict[str, Any] = {}
    for key in DETAILS:
        text = typed[key]
        if not text:
            continue
        was = current[key]
        shown = was.isoformat() if isinstance(was, date) else str(was)
        if text != shown:
            out[key] = _discount(text) if key == "discount_percent" else text
    return out


async def _change(request: Request, action: str, command: Callable[..., int],
                  fields: Callable[[dict[str, Any], dict[str, str]], dict[str, Any]],
                  ) -> Response:
    """:func:`act` on the campaign of the path, for those who may act for its owning team;
    ``fields(current, typed)``: the command's fields; refused: its page again (422)."""
    current, refused = await _owned(request)
    if refused is not None:
        return refused
    typed = form_values(await request.form())

    async def again(errors: dict[str, str]) -> Response:
        return await show_campaign(request, errors=errors, typed=typed, status=422)

    return await act(request, action, ("campaign", current["campaign"]), command,
                     fields(current, typed), again)


async def amend(request: Request) -> Response:
    """Change the details the form changes (none: the command says it changes nothing)."""
    return await _change(request, "amend", console_of(request).engine.amend_campaign,
                         _changes)


async def end(request: Request) -> Response:
    """End the campaign now (its page then says when)."""
    return await _change(request, "end", console_of(request).engine.end_campaign,
                         lambda current, typed: {"reason": typed["reason"] or None})


def routes() -> list[BaseRoute]:
    return [Route("/campaigns", announce, methods=["POST"]),
            Route("/campaigns/{campaign:path}/amend", amend, methods=["POST"]),
            Route("/campaigns/{campaign:path}/end", end, methods=["POST"])]
