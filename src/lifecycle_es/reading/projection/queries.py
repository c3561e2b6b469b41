"""Questions answered from the built-in read models (embedded use and the CLI).

>>> from lifecycle_es.reading.projection import queries
>>> queries.stage_counts(engine.projections)            # doctest: +SKIP
[{'stage': 'awareness', 'team': 'marketing', 'customers': 12}, ...]

Each function first catches the read models up with the log (``catch_up=False`` to read them
as they are, e.g. when a separate ``projections run`` keeps them fresh). A read model that
stopped on an event it could not apply raises ``ProjectionFailed`` (stale since where).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lifecycle_es.domain.ids import parse_id
from lifecycle_es.domain.stage_model import CHURNED
from lifecycle_es.errors import FieldProblem, InvalidInput, UnknownCustomer
from lifecycle_es.limits import MAX_TIME, MIN_TIME, utc_instant

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.runner import ProjectionManager

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

STAGE_COLUMNS = ("customer", "name", "segment", "stage", "since", "stage_team", "owner",
                 "owner_team", "paying", "mrr", "currency", "regressions", "registered_at",
                 "last_event_at")
COUNT_COLUMNS = ("stage", "team", "customers")
HANDOVER_COLUMNS = ("customer", "handover_id", "from_team", "to_team", "from_person",
                    "to_person", "status", "sent_at", "decided_by", "decided_at",
                    "latency_seconds", "reject_reason", "document")


def parse_age(text: str, field: str = "older_than") -> timedelta:
    """``"30m"``, ``"12h"``, ``"3d"``, ``"2w"`` as a timedelta (InvalidInput naming
    ``field``)."""
    m = _AGE.match(text)
    if m is None:
        raise InvalidInput(
            [FieldProblem(field, text, "expected a number and a unit m, h, d or w, e.g. 3d")]
        )
    longest = MAX_TIME - MIN_TIME
    try:
        age = timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    except OverflowError:
        age = longest + longest
    if age > longest:
        raise InvalidInput([FieldProblem(field, text, f"longer than the supported time range "
                                                      f"({longest.days} days)")])
    return age


def _fresh(pm: ProjectionManager, name: str, catch_up: bool) -> None:
    pm.ensure_current([name], catch_up)


def customer_stage(pm: ProjectionManager, customer: str, *,
                   catch_up: bool = True) -> dict[str, Any]:
    """The ``current_stage`` row of one customer (UnknownCustomer when there is none)."""
    customer = parse_id("customer", customer)
    _fresh(pm, "current_stage", catch_up)
    rows = pm.fetch("current_stage", "customer=?", [customer])
    if not rows:
        raise UnknownCustomer(customer)
    return rows[0]


def current_stages(pm: ProjectionManager, *, customers: Sequence[str] | None = None,
                   segment: str | None = None,
                   catch_up: bool = True) -> list[dict[str, Any]]:
    """``current_stage`` rows: of ``customers`` (ids as stored) and/or of one ``segment``."""
    _fresh(pm, "current_stage", catch_up)
    where: list[str] = []
    params: list[Any] = []
    if customers is not None:
        if not customers:
            return []
        where.append(f"customer IN ({', '.join('?' * len(customers))})")
        params.extend(customers)
    if segment is not None:
        where.append("segment=?")
        params.append(segment)
    return pm.fetch("current_stage", " AND ".join(where), params)


def stage_counts(pm: ProjectionManager, *, catch_up: bool = True) -> list[dict[str, Any]]:
    """Customers per stage, in the stage model's order (``churned`` last, zeros included)."""
    _fresh(pm, "current_stage", catch_up)
    counts = dict(pm.read.fetchall("SELECT stage, COUNT(*) FROM current_stage GROUP BY stage"))
    model = pm.engine.stage_model
    names = [*model.names, CHURNED]
    names += sorted(set(counts) - set(names))  # stages of another model, if it was changed
    return [
        {"stage": s, "team": model.stage(s).team if model.has_stage(s) else None,
         "customers": int(counts.get(s, 0))}
        for s in names
    ]


def customer_names(pm: ProjectionManager, *, catch_up: bool = True,
                   customers: Sequence[str] | None = None) -> dict[str, str | None]:
    """Customer -> name as stored now (``[erased]`` after an erasure, docs/privacy.md), of
    every customer or of those given."""
    _fresh(pm, "current_stage", catch_up)
    if customers is None or len(customers) > _MANY:
        return dict(pm.read.fetchall("SELECT customer, name FROM current_stage"))
    if not customers:
        return {}
    marks = ", ".join("?" * len(set(customers)))
    return {r["customer"]: r["name"] for r in pm.fetch(
        "current_stage", f"customer IN ({marks})", sorted(set(customers)))}


#: the most ids one query names (more: every row is read)
_MANY = 500


def handovers(
    pm: ProjectionManager, *, customer: str | None = None, pending: bool = False,
    older_than: timedelta | None = None, now: datetime | None = None, catch_up: bool = True,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """Handovers, oldest first: of one customer, only pending ones, only those sent before
    ``now - older_than`` (``now`` defaults to the current time).

    With ``as_of``: the handovers sent by then, each with its status at that time (one
    decided later was still ``pending``); ``older_than`` counts back from ``as_of``.
    """
    _fresh(pm, "handover_history", catch_up)
    if as_of is not None:
        return _handovers_as_of(pm, utc_instant("as_of", as_of), customer, pending, older_than)
    where: list[str] = []
    params: list[Any] = []
    if customer is not None:
        where.append("customer=?")
        params.append(parse_id("customer", customer))
    if pending:
        where.append("status=?")
        params.append("pending")
    if older_than is not None:
        where.append("sent_at<?")
        params.append((datetime.now(UTC) if now is None else utc_instant("now", now))
                      - older_than)
    return pm.fetch("handover_history", " AND ".join(where), params,
                    "sent_at, customer, handover_id")


#: what a list of handovers shows (no document)
HANDOVER_SUMMARY = tuple(c for c in HANDOVER_COLUMNS if c != "document")


def pending_handovers(pm: ProjectionManager, *, limit: int,
                      catch_up: bool = True) -> dict[str, tuple[int, list[dict[str, Any]]]]:
    """Per receiving team: how many handovers are pending, and the ``limit`` sent first
    (oldest first; without their document). Indexed reads: a count per team and a page."""
    _fresh(pm, "handover_history", catch_up)
    counts = pm.read.fetchall("SELECT to_team, COUNT(*) FROM handover_history "
                              "WHERE status = ? GROUP BY to_team", ["pending"])
    return {team: (int(n), pm.fetch("handover_history", "status=? AND to_team=?",
                                    ["pending", team], "sent_at, customer, handover_id",
                                    columns=HANDOVER_SUMMARY, limit=limit))
            for team, n in sorted(counts)}


def decided_handovers(pm: ProjectionManager, *, limit: int,
                      catch_up: bool = True) -> list[dict[str, Any]]:
    """The ``limit`` handovers decided last, latest first (without their document)."""
    _fresh(pm, "handover_history", catch_up)
    return pm.fetch("handover_history", "status<>?", ["pending"],
                    "decided_at DESC, customer, handover_id", columns=HANDOVER_SUMMARY,
                    limit=limit)


def _handovers_as_of(pm: ProjectionManager, at: datetime, customer: str | None, pending: bool,
                     older_than: timedelta | None) -> list[dict[str, Any]]:
    """The handovers sent by ``at`` as they stood then (decisions after ``at`` undone)."""
    where: list[str] = ["sent_at<=?"]
    params: list[Any] = [at]
    if customer is not None:
        where.append("customer=?")
        params.append(parse_id("customer", customer))
    if older_than is not None:
        where.append("sent_at<?")
        params.append(at - older_than)
    rows = pm.fetch("handover_history", " AND ".join(where), params,
                    "sent_at, customer, handover_id")
    undecided = {"status": "pending", "decided_by": None, "decided_at": None,
                 "latency_seconds": None, "reject_reason": None}
    shown = [{**row, **undecided} if row["decided_at"] is not None
             and utc_instant("decided_at", row["decided_at"]) > at else row for row in rows]
    return [row for row in shown if not pending or row["status"] == "pending"]


USER_COLUMNS = ("name", "team", "role", "disabled", "added_at", "changed_at", "changed_by")


def users(pm: ProjectionManager, *, catch_up: bool = True) -> list[dict[str, Any]]:
    """The people of the web console (``users`` read model), by name; no password hash."""
    _fresh(pm, "users", catch_up)
    return pm.fetch("users", order="name")


TOKEN_COLUMNS = ("name", "scope", "act_for_others", "revoked", "added_at", "added_by",
                 "revoked_at", "revoked_by")


def api_tokens(pm: ProjectionManager, *, catch_up: bool = True) -> list[dict[str, Any]]:
    """The tokens of the HTTP API (``api_tokens`` read model), by name; no hash."""
    _fresh(pm, "api_tokens", catch_up)
    return pm.fetch("api_tokens", order="name")


def campaigns(pm: ProjectionManager, *, catch_up: bool = True) -> list[dict[str, Any]]:
    """The shared registry of campaigns (``campaigns`` read model), latest start first."""
    _fresh(pm, "campaigns", catch_up)
    return pm.fetch("campaigns", order="starts DESC, campaign")
