"""gaps_facts: time-stamped facts the gap checks and the health score ask "as of" any time.

Five customer tables and one campaign table:

- ``gap_spans``: intervals of a customer's stage, owner and money (paying, MRR, contract
  end). A span is open from ``start_at`` until ``end_at`` (NULL: still open), so the value
  at time t is the span with ``start_at <= t AND (end_at IS NULL OR end_at > t)``.
- ``gap_open``: which span of each kind is open now (bookkeeping for the handlers).
- ``gap_points``: dated facts — check-ins, NPS answers, advocacy requests and gifts, and
  touchpoints citing a campaign.
- ``gap_now``: one row per customer with the facts as they stand after every recorded
  event (its open spans, its latest check-in, NPS and advocacy), and ``latest_at``, the
  latest business time among them: as of any time >= ``latest_at`` the customer's facts are
  this row, so "now" is one indexed read instead of a fold over the history.
- ``gap_work``: the work on gaps (assigned, snoozed, dismissed), one row per event, by
  business time, so "assigned to whom, snoozed or dismissed as of t" is answerable.
- ``gap_campaigns``: every version of every campaign of the registry (announce, amend, end),
  so "was the campaign running on that day, as the registry said at time t" is answerable.

Pending handovers come from ``handover_history``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from lifecycle_es.domain import Campaign, Customer, Money
from lifecycle_es.projection import Column, Projection, Table, Tables, on

STAGE, OWNER, MONEY = "stage", "owner", "money"
CHURNED_MONEY = "money_before_churn"


class GapsFacts(Projection):
    name = "gaps_facts"
    version = 3  # 2: gap_now; 3: gap_work
    rebuild_cost = 1.8  # relative, for rebuild --jobs: five tables
    replay_by_aggregate = True  # handlers touch only rows of the event's own aggregate
    description = ("stage/owner/money spans, check-ins, NPS, advocacy, offers, campaign "
                   "versions; each customer's facts now; gaps assigned, snoozed, dismissed")
    tables = (
        Table(
            "gap_spans",
            key=("customer", "kind", "seq"),
            columns={
                "customer": "text",
                "kind": "text",
                "seq": "int",
                "start_at": "timestamp",
                "end_at": "timestamp",
                "value": "text",
                "extra": "text",
                "number": "int",
                "day": "date",
            },
            indexes=(("kind", "start_at"), ("kind", "end_at")),
            doc={
                "customer": "external id of the customer",
                "kind": "stage | owner | money",
                "seq": "version of the customer event that opened the span",
                "start_at": "business time the span began",
                "end_at": "business time it ended (NULL: open)",
                "value": "stage name | owner (NULL: unowned) | currency",
                "extra": "owner: the owner's team",
                "number": "money: MRR in minor units",
                "day": "money: contract end date",
            },
        ),
        Table(
            "gap_open",
            key=("customer", "kind"),
            columns={"customer": "text", "kind": "text", "seq": "int"},
            doc={"seq": "seq of the customer's open span of this kind (money_before_churn: "
                        "the money span a churn closed)"},
        ),
        Table(
            "gap_points",
            key=("customer", "seq"),
            columns={
                "customer": "text",
                "seq": "int",
                "kind": "text",
                "at": "timestamp",
                "score": "int",
                "ref": "text",
                "actor": "text",
                "team": "text",
            },
            # covering for the offers' check (no row read per touchpoint)
            indexes=(("kind", "at", "ref", "actor", "team", "customer", "seq"),),
            doc={
                "kind": "check_in | nps | advocacy_requested | advocacy_given | offer",
                "at": "business time",
                "score": "nps: the score 0-10",
                "ref": "offer: the campaign id cited by the touchpoint",
                "actor": "who recorded it",
                "team": "team that recorded it",
            },
        ),
        Table(
            "gap_now",
            key=("customer",),
            columns={
                "customer": "text",
                "stage": "text",
                "stage_since": "timestamp",
                "owner": "text",
                "owner_team": "text",
                "owner_since": "timestamp",
                "paying": "bool",
                "mrr": "int",
                "currency": "text",
                "contract_end": "date",
                "last_check_in": "timestamp",
                "last_nps": "int",
                "last_nps_at": "timestamp",
                "last_nps_seq": "int",
                "last_advocacy_ask": "timestamp",
                "advocacy_given": "int",
                "latest_at": "timestamp",
            },
            indexes=(("latest_at",), ("owner",), ("stage", "stage_since")),
            doc={
                "stage": "stage of the open stage span",
                "stage_since": "business time the open stage span began",
                "owner": "owner of the open owner span (NULL: unowned)",
                "owner_team": "the owner's team",
                "owner_since": "business time the open owner span began",
                "paying": "a money span is open",
                "mrr": "MRR of the open money span, minor units (0: none)",
                "currency": "currency of the open money span",
                "contract_end": "contract end of the open money span",
                "last_check_in": "business time of the latest check-in",
                "last_nps": "score of the latest NPS answer (by business time, then version)",
                "last_nps_at": "business time of that answer",
                "last_nps_seq": "version of that answer",
                "last_advocacy_ask": "business time of the latest advocacy request or gift",
                "advocacy_given": "advocacy gifts so far",
                "latest_at": "latest business time of the facts above (the row is the "
                             "customer's facts as of any time from then on)",
            },
        ),
        Table(
            "gap_work",
            key=("customer", "seq"),
            columns={
                "customer": "text",
                "seq": "int",
                "gap_id": "text",
                "action": "text",
                "at": "timestamp",
                "actor": "text",
                "assignee": "text",
                "until": "date",
                "reason": Column("text", personal=True),
            },
            indexes=(("at",),),
            doc={
                "seq": "version of the customer event",
                "gap_id": "the gap's id (KIND:CUSTOMER:SUBJECT)",
                "action": "assigned | snoozed | dismissed",
                "at": "business time",
                "actor": "who did it",
                "assignee": "assigned: the person to close the gap",
                "until": "snoozed: the day the gap shows again",
                "reason": "snoozed, dismissed: why",
            },
        ),
        Table(
            "gap_campaigns",
            key=("campaign", "seq"),
            partition=None,
            columns={
                "campaign": "text",
                "seq": "int",
                "at": "timestamp",
                "name": "text",
                "starts": "date",
                "ends": "date",
                "ended_at": "timestamp",
            },
            doc={
                "campaign": "campaign id in the shared registry",
                "seq": "campaign event version (one row per version)",
                "at": "business time of that version",
                "starts": "first day the offer runs",
                "ends": "last day the offer runs",
                "ended_at": "when it was ended early (NULL: not ended)",
            },
        ),
    )

    # --------------------------------------------------------------- spans

    def _open(self, db: Tables, e: Customer.Event, kind: str, **values: Any) -> None:
        """Close the customer's open span of ``kind`` (if any) and open a new one."""
        self._close(db, e, kind)
        row = {"customer": e.customer, "kind": kind, "seq": e.originator_version,
               "start_at": e.occurred_at, "end_at": None, "value": None, "extra": None,
               "number": None, "day": None}
        db["gap_spans"].put({**row, **values})
        db["gap_open"].put({"customer": e.customer, "kind": kind, "seq": e.originator_version})
        self._now(db, e, **_now_columns(kind, e.occurred_at, {**row, **values}))

    def _close(self, db: Tables, e: Customer.Event, kind: str) -> dict[str, Any] | None:
        """Close the open span of ``kind``; returns it as it was (None if none was open)."""
        current = db["gap_open"].get(e.customer, kind)
        if current is None:
            return None
        db["gap_open"].delete(e.customer, kind)
        span = db["gap_spans"].get(e.customer, kind, current["seq"])
        db["gap_spans"].update(e.customer, kind, current["seq"], end_at=e.occurred_at)
        if kind == MONEY:  # no money span open: not paying (until one opens again)
            self._now(db, e, **_NOT_PAYING)
        return span

    def _now(self, db: Tables, e: Customer.Event, **changes: Any) -> None:
        """Change the customer's ``gap_now`` row (created on first use); ``latest_at``
        moves to ``e``'s business time when that is later."""
        rows = db["gap_now"]
        row = rows.get(e.customer) or {"customer": e.customer, **_NOW_EMPTY}
        rows.put({**row, **changes, "latest_at": _later(row["latest_at"], e.occurred_at)})

    def _span_money(self, db: Tables, e: Customer.Event, kind: str = MONEY) -> Money | None:
        """The money of the customer's open span of ``kind`` (None: no such span)."""
        current = db["gap_open"].get(e.customer, kind)
        span = db["gap_spans"].get(e.customer, MONEY, current["seq"]) if current else None
        if span is None:
            return None
        return Money(kind == MONEY, int(span["number"] or 0), span["value"], span["day"])

    def _money(self, db: Tables, e: Customer.Event, before: Money) -> None:
        """Close the open money span and open one with the money after ``e``
        (``Customer.Event.money``): currency, MRR and contract end."""
        m = e.money(before)
        self._close(db, e, MONEY)
        self._open(db, e, MONEY, value=m.currency, number=m.mrr, day=m.contract_end)

    @on(Customer.Registered)
    def registered(self, e: Customer.Registered, db: Tables) -> None:
        self._open(db, e, STAGE, value=e.stage)
        self._open(db, e, OWNER)

    @on(Customer.StageChanged)
    def moved(self, e: Customer.StageChanged, db: Tables) -> None:
        self._open(db, e, STAGE, value=e.to_stage)

    @on(Customer.OwnerAssigned)
    def owner_assigned(self, e: Customer.OwnerAssigned, db: Tables) -> None:
        self._open(db, e, OWNER, value=e.owner, extra=e.team)

    @on(Customer.HandoverAccepted)
    def handover_accepted(self, e: Customer.HandoverAccepted, db: Tables) -> None:
        self._open(db, e, OWNER, value=e.actor, extra=e.team)

    @on(Customer.OwnerReleased)
    def owner_released(self, e: Customer.OwnerReleased, db: Tables) -> None:
        self._open(db, e, OWNER)

    @on(Customer.Purchased)
    def purchased(self, e: Customer.Purchased, db: Tables) -> None:
        self._money(db, e, self._span_money(db, e) or Money())

    @on(Customer.Renewed, Customer.Expanded, Customer.Contracted)
    def mrr_changed(self, e: Customer.Event, db: Tables) -> None:
        if (before := self._span_money(db, e)) is not None:  # only while paying
            self._money(db, e, before)

    @on(Customer.Churned)
    def churned(self, e: Customer.Churned, db: Tables) -> None:
        span = self._close(db, e, MONEY)
        if span is not None:  # remembered so a win-back keeps currency and contract end
            db["gap_open"].put({"customer": e.customer, "kind": CHURNED_MONEY,
                                "seq": span["seq"]})
        self._open(db, e, STAGE, value="churned")

    @on(Customer.WonBack)
    def won_back(self, e: Customer.WonBack, db: Tables) -> None:
        self._money(db, e, self._span_money(db, e, CHURNED_MONEY) or Money())
        self._open(db, e, STAGE, value=e.stage)

    # -------------------------------------------------------------- points

    def _point(self, db: Tables, e: Customer.Event, kind: str, score: int | None = None,
               ref: str | None = None) -> None:
        db["gap_points"].put({
            "customer": e.customer, "seq": e.originator_version, "kind": kind,
            "at": e.occurred_at, "score": score, "ref": ref, "actor": e.actor, "team": e.team,
        })
        if kind != "offer":
            row = db["gap_now"].get(e.customer) or _NOW_EMPTY
            self._now(db, e, **_latest_point(row, kind, e.occurred_at, e.originator_version,
                                             score))

    @on(Customer.CheckedIn)
    def checked_in(self, e: Customer.CheckedIn, db: Tables) -> None:
        self._point(db, e, "check_in")

    @on(Customer.NpsAnswered)
    def nps(self, e: Customer.NpsAnswered, db: Tables) -> None:
        self._point(db, e, "nps", score=e.score)

    @on(Customer.AdvocacyRequested)
    def advocacy_requested(self, e: Customer.AdvocacyRequested, db: Tables) -> None:
        self._point(db, e, "advocacy_requested", ref=e.kind)

    @on(Customer.AdvocacyGiven)
    def advocacy_given(self, e: Customer.AdvocacyGiven, db: Tables) -> None:
        self._point(db, e, "advocacy_given", ref=e.kind)

    @on(Customer.Touchpoint)
    def touchpoint(self, e: Customer.Touchpoint, db: Tables) -> None:
        if e.campaign_id:
            self._point(db, e, "offer", ref=e.campaign_id)

    # ---------------------------------------------------------------- work

    def _work(self, db: Tables, e: Customer.Event, gap_id: str, action: str,
              **values: Any) -> None:
        db["gap_work"].put({"customer": e.customer, "seq": e.originator_version,
                            "gap_id": gap_id, "action": action, "at": e.occurred_at,
                            "actor": e.actor, "assignee": None, "until": None,
                            "reason": None, **values})

    @on(Customer.GapAssigned)
    def gap_assigned(self, e: Customer.GapAssigned, db: Tables) -> None:
        self._work(db, e, e.gap_id, "assigned", assignee=e.assignee)

    @on(Customer.GapSnoozed)
    def gap_snoozed(self, e: Customer.GapSnoozed, db: Tables) -> None:
        self._work(db, e, e.gap_id, "snoozed", until=e.until, reason=e.reason)

    @on(Customer.GapDismissed)
    def gap_dismissed(self, e: Customer.GapDismissed, db: Tables) -> None:
        self._work(db, e, e.gap_id, "dismissed", reason=e.reason)

    # ----------------------------------------------------------- campaigns

    def _version(self, db: Tables, e: Campaign.Event, **values: Any) -> None:
        before = db["gap_campaigns"].get(e.campaign, e.originator_version - 1) or {}
        db["gap_campaigns"].put({
            **before, "campaign": e.campaign, "seq": e.originator_version,
            "at": e.occurred_at, **values,
        })

    @on(Campaign.Announced)
    def announced(self, e: Campaign.Announced, db: Tables) -> None:
        self._version(db, e, name=e.name, starts=e.starts, ends=e.ends, ended_at=None)

    @on(Campaign.Amended)
    def amended(self, e: Campaign.Amended, db: Tables) -> None:
        changes = {k: _as_date(v) for k, v in e.changes.items() if k in ("starts", "ends")}
        if "name" in e.changes:
            changes["name"] = e.changes["name"]
        self._version(db, e, **changes)

    @on(Campaign.Ended)
    def ended(self, e: Campaign.Ended, db: Tables) -> None:
        self._version(db, e, ended_at=e.occurred_at)


#: a new ``gap_now`` row before its first fact; and its money columns when not paying
_NOT_PAYING: dict[str, Any] = {"paying": False, "mrr": 0, "currency": None,
                               "contract_end": None}
_NOW_EMPTY: dict[str, Any] = {
    "stage": None, "stage_since": None, "owner": None, "owner_team": None,
    "owner_since": None, **_NOT_PAYING, "last_check_in": None, "last_nps": None,
    "last_nps_at": None, "last_nps_seq": None, "last_advocacy_ask": None,
    "advocacy_given": 0, "latest_at": None,
}


def _now_columns(kind: str, at: datetime, span: dict[str, Any]) -> dict[str, Any]:
    """The ``gap_now`` columns a newly opened span of ``kind`` sets."""
    if kind == STAGE:
        return {"stage": span["value"], "stage_since": at}
    if kind == OWNER:
        return {"owner": span["value"], "owner_team": span["extra"], "owner_since": at}
    return {"paying": True, "mrr": int(span["number"] or 0), "currency": span["value"],
            "contract_end": span["day"]}


def _later(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _latest_point(row: dict[str, Any], kind: str, at: datetime, seq: int,
                  score: int | None) -> dict[str, Any]:
    """The ``gap_now`` columns a check-in, NPS answer or advocacy point changes."""
    if kind == "check_in":
        return {"last_check_in": _later(row["last_check_in"], at)}
    if kind == "nps":
        last = row["last_nps_at"]
        if last is None or (at, seq) > (last, row["last_nps_seq"]):
            return {"last_nps": score, "last_nps_at": at, "last_nps_seq": seq}
        return {}
    given = row["advocacy_given"] + (kind == "advocacy_given")
    return {"last_advocacy_ask": _later(row["last_advocacy_ask"], at),
            "advocacy_given": given}


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))
