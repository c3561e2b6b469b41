"""Gaps: customers slipping through the cracks between teams, as of any time.

Each :class:`Gap` names the customer, the kind, since when it is a gap (the moment the
threshold was crossed), the responsible team and owner. The kinds and their rules are in
``docs/metrics.md`` ("Gaps"); the thresholds in :class:`lifecycle_es.config.GapsConfig`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from lifecycle_es.config import Config, GapsConfig, load_config
from lifecycle_es.domain.gap_ids import KINDS as KINDS  # every kind, with its rules below
from lifecycle_es.domain.gap_ids import day, gap_id, moment
from lifecycle_es.domain.ids import parse_id
from lifecycle_es.domain.stage_model import CHURNED, StageModel
from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.gcpause import without_cyclic_gc
from lifecycle_es.limits import checked, stripped_text
from lifecycle_es.reading.lifecycle_checks.buying import Lapsing, figures, lapsing
from lifecycle_es.reading.lifecycle_checks.facts import (
    CampaignVersion,
    CustomerFacts,
    FactsReader,
    Scope,
    Who,
    as_utc,
    days,
    reader_for,
)
from lifecycle_es.reading.lifecycle_checks.gap_work import WorkOnGaps, work_on_gaps
from lifecycle_es.reading.metrics.calc import When

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source

#: the kinds that depend on one customer's facts only (:meth:`Detector.customer_gaps`)
CUSTOMER_KINDS = frozenset(KINDS) - {"handover_stale", "unknown_offer", "lapsing"}
#: the fields of a gap, in order (:meth:`Gap.as_dict`)
GAP_FIELDS = ("customer", "kind", "since", "team", "owner", "stage", "detail", "ref",
              "assignee", "snoozed_until", "dismissed")
#: the most rows one page may ask for
MAX_LIMIT = 10_000
#: a page first reads the gaps begun this many days before AS_OF (then all of them)
_CUTOFF_DAYS = (365, 90)


@dataclass(frozen=True)
class Gap:
    """One customer left hanging."""

    customer: str
    kind: str
    since: datetime  # when it became a gap
    team: str  # the team responsible for closing it
    owner: str | None  # the person responsible (None: nobody)
    stage: str | None  # the customer's stage at the time
    detail: str  # what happened, in words
    ref: str | None = None  # the handover id or campaign id concerned
    #: the situation, as the id names it (docs/metrics.md, "Gaps as work items"); empty:
    #: the handover (``ref``) of a stale handover, else ``since`` (and the campaign)
    subject: tuple[str, ...] = ()
    assignee: str | None = None  # the person it was assigned to (None: nobody)
    snoozed_until: date | None = None  # snoozed until this day (None: not snoozed now)
    dismissed: str | None = None  # why it was dismissed (None: not dismissed)

    @property
    def id(self) -> str:
        """The gap's stable id: ``KIND:CUSTOMER:SUBJECT`` (``domain/gap_ids.py``). The
        same situation keeps it across queries, rebuilds and changed thresholds; a new
        one gets another."""
        subject = self.subject
        if not subject:
            subject = (self.ref,) if self.kind == "handover_stale" and self.ref else (
                moment(self.since), *((self.ref,) if self.kind == "unknown_offer" and self.ref
                                      else ()))
        return gap_id(self.kind, self.customer, *subject)

    def as_dict(self, as_of: datetime) -> dict[str, Any]:
        """The gap as a JSON-ready row, with its ``id`` and ``days_open`` at ``as_of`` (its
        fields are flat values: a shallow copy, not ``asdict``'s deep one; 26,000 gaps in
        0.5 s instead of 3.3)."""
        return {"id": self.id, **{f: getattr(self, f) for f in GAP_FIELDS},
                "days_open": round(days(as_of - self.since), 2)}


assert tuple(f.name for f in fields(Gap) if f.name != "subject") == GAP_FIELDS


def check_kind(kind: str | None) -> str | None:
    """A gap kind as given by a user (``handover-stale`` works too), validated."""
    if kind is None:
        return None
    norm = kind.strip().lower().replace("-", "_")
    if norm not in KINDS:
        raise InvalidInput([FieldProblem("kind", kind, f"unknown gap kind (known: "
                                         f"{', '.join(KINDS)})")], "gaps query")
    return norm


def stall_limit(model: StageModel, cfg: GapsConfig, stage: str) -> int | None:
    """Days a customer may stay in ``stage`` before it is stalled (None: no limit)."""
    if stage in cfg.stall_after_days:
        return cfg.stall_after_days[stage]
    if stage == CHURNED or not model.has_stage(stage):
        return None
    return model.stage(stage).stall_after_days


@without_cyclic_gc  # thousands of rows and answers that form no cycles
def find_gaps(engine: Source, as_of: When | None = None, kind: str | None = None,
              team: str | None = None, *, config: Config | None = None,
              customer: str | None = None, owner: str | None = None,
              assignee: str | None = None, include_snoozed: bool = False,
              include_dismissed: bool = False,
              limit: int | None = None, offset: int = 0) -> list[Gap]:
    """Open gaps at ``as_of`` (default now), oldest first, optionally of one kind, for one
    team (the gap's responsible team), for one owner (the gap's responsible person),
    assigned to one ``assignee``, of one ``customer``; with ``limit``/``offset`` one page
    of that list. Gaps snoozed at ``as_of`` and dismissed ones are left out unless
    ``include_snoozed`` / ``include_dismissed``."""
    kind = check_kind(kind)
    team = check_team(engine.stage_model, team, "gaps query")
    owner = check_owner(owner, "gaps query")
    customer = None if customer is None else parse_id("customer", customer, "gaps query")
    assignee = check_owner(assignee, "gaps query", "assignee")
    limit, offset = check_page(limit, offset, "gaps query")
    at = as_utc(as_of)
    cfg = (config or load_config()).gaps
    reader = reader_for(engine)
    detector = Detector(engine.stage_model, cfg, at)
    work = work_on_gaps(reader, at, customer)

    def kept(gaps: list[Gap]) -> list[Gap]:
        return with_work(gaps, work, at, assignee=assignee, include_snoozed=include_snoozed,
                         include_dismissed=include_dismissed)

    lapsed = [] if kind not in (None, "lapsing") else [
        g for g in detector.lapsing(reader, lapsing_of(engine, reader, cfg, at), customer)
        if (team is None or g.team == team) and (owner is None or g.owner == owner)]
    if limit is not None:  # a page: read only gaps begun by a cutoff, when there are enough
        for until in (_before(at, timedelta(days=d)) for d in _CUTOFF_DAYS):
            early = kept([g for g in [*detector.find(reader, customer, kind=kind, team=team,
                                                     owner=owner, until=until), *lapsed]
                          if g.since <= until])
            if len(early) >= offset + limit:
                return page(early, _order, limit, offset)
    gaps = kept([*detector.find(reader, customer, kind=kind, team=team, owner=owner),
                 *lapsed])
    return page(gaps, _order, limit, offset)


def among(ids: tuple[str, ...]) -> Scope:
    """The customers of ``ids`` not paying; beyond a thousand, every customer not paying
    (a statement names at most that many: the databases limit its parameters)."""
    return Scope(ids=ids, paying=False) if len(ids) <= 1_000 else Scope(paying=False)


def lapsing_of(engine: Source, reader: FactsReader, cfg: GapsConfig,
               at: datetime) -> list[Lapsing]:
    """The customers the ``lapsing`` rule picks at ``at``, ranked among the customers
    buying without a contract that are neither paying nor churned then (none without a
    prediction)."""
    prediction = figures(engine, at, cfg.lapsing_horizon_days)
    if prediction is None:
        return []
    buyers = tuple(sorted(c.customer for c in prediction.customers if not c.on_contract))
    facts = reader.customers(at, scope=among(buyers))
    eligible = {c for c, f in facts.items() if not f.paying and f.stage != CHURNED}
    return lapsing(prediction, cfg.lapsing_p_alive, cfg.lapsing_top_share, eligible)


def with_work(gaps: list[Gap], work: WorkOnGaps, at: datetime, *, assignee: str | None,
              include_snoozed: bool, include_dismissed: bool) -> list[Gap]:
    """``gaps`` with the work on them at ``at`` (assignee, snooze in effect, dismissal),
    those assigned to ``assignee`` (None: anyone), snoozed or dismissed ones only if
    asked for."""
    if not work.by_gap and assignee is None:
        return gaps
    out = []
    for g in gaps:
        w = work.of(g)
        if w is not None:
            g = replace(g, assignee=w.assignee, snoozed_until=w.snoozed_at(at),
                        dismissed=w.dismissed)
        if ((assignee is None or g.assignee == assignee)
                and (include_snoozed or g.snoozed_until is None)
                and (include_dismissed or g.dismissed is None)):
            out.append(g)
    return out


def _order(g: Gap) -> tuple[datetime, str, str, str]:
    return g.since, g.customer, g.kind, g.ref or ""


def page(rows: list[Any], key: Any, limit: int | None, offset: int) -> list[Any]:
    """``rows`` sorted by ``key``, from ``offset``, at most ``limit`` of them (None: all)."""
    if limit is None:
        return sorted(rows, key=key)[offset:]
    return heapq.nsmallest(offset + limit, rows, key=key)[offset:]


def check_team(model: StageModel, team: str | None, what: str) -> str | None:
    """A team filter, validated against the stage model's teams."""
    if team is not None and team not in model.teams:
        raise InvalidInput([FieldProblem("team", team, f"unknown team (known: "
                                         f"{', '.join(model.teams)})")], what)
    return team


def check_owner(owner: str | None, what: str, field: str = "owner") -> str | None:
    """An owner (or assignee: ``field``) filter, normalised as the commands normalise
    names (not empty)."""
    if owner is None:
        return None
    name = checked(field, owner, stripped_text, what)
    if not name:
        raise InvalidInput([FieldProblem(field, owner, "must not be empty")], what)
    return name


def check_page(limit: int | None, offset: int, what: str) -> tuple[int | None, int]:
    """A page's ``limit`` (1..MAX_LIMIT or None: all) and ``offset`` (>= 0), validated."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 1 <= limit <= MAX_LIMIT):
        raise InvalidInput([FieldProblem("limit", limit, f"must be an integer from 1 to "
                                         f"{MAX_LIMIT}")], what)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput([FieldProblem("offset", offset, "must be an integer >= 0")], what)
    return limit, offset


def _before(at: datetime, delta: timedelta) -> datetime:
    """``at - delta``, or the earliest time when that is before year 1."""
    try:
        return at - delta
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def team_scope(model: StageModel, team: str | None, owner: str | None) -> Scope:
    """The customers in a stage of ``team`` (None: any) owned by ``owner`` (None: anyone)."""
    stages = None if team is None else tuple(
        name for name in (*model.names, CHURNED) if model.stage(name).team == team)
    return Scope(stages=stages, owner=owner)


class Detector:
    """The rules, applied to one time ``at``."""

    def __init__(self, model: StageModel, cfg: GapsConfig, at: datetime) -> None:
        self.model, self.cfg, self.at = model, cfg, at
        self._teams: dict[str, str] = {}  # by stage, looked up once per stage
        self._limits: dict[str, int | None] = {}

    def _team(self, stage: str) -> str:
        team = self._teams.get(stage)
        if team is None:
            team = self.model.stage(stage).team if self.model.has_stage(stage) else ""
            self._teams[stage] = team
        return team

    def stall_limit(self, stage: str) -> int | None:
        """:func:`stall_limit` of ``stage``, looked up once per stage."""
        if stage not in self._limits:
            self._limits[stage] = stall_limit(self.model, self.cfg, stage)
        return self._limits[stage]

    def _gap(self, f: CustomerFacts, kind: str, since: datetime, detail: str,
             **extra: Any) -> Gap:
        values: dict[str, Any] = {"team": self._team(f.stage), "owner": f.owner, **extra}
        return Gap(f.customer, kind, since, stage=f.stage, detail=detail, **values)

    def find(self, reader: FactsReader, customer: str | None = None, *,
             kind: str | None = None, team: str | None = None,
             owner: str | None = None, until: datetime | None = None) -> list[Gap]:
        """The gaps of ``kind`` (None: all) whose team is ``team`` and whose owner is
        ``owner`` (None: any); each part reads only the rows that can hold such gaps. With
        ``until``: every gap that became one by then, and maybe some later ones."""
        facts: dict[str, CustomerFacts] = {}
        gaps: list[Gap] = []
        if kind is None or kind in CUSTOMER_KINDS:
            scope = replace(team_scope(self.model, team, owner),
                            suspects=self.suspects(reader, kind, until))
            facts = reader.customers(self.at, customer, scope)
            gaps.extend(g for f in facts.values() for g in self.customer_gaps(f))
        # one microsecond after until: "sent before" is strict
        late = self.at if until is None else min(self.at, until + timedelta(microseconds=1))
        if kind in (None, "handover_stale"):
            sla = timedelta(days=self.cfg.handover_sla_days)
            pending = reader.pending_handovers(self.at, late - sla, customer, to_team=team,
                                               to_person=owner)
            self._add_facts(reader, facts, (h["customer"] for h in pending))
            gaps.extend(self._stale(pending, facts))
        if kind in (None, "unknown_offer"):
            campaigns = reader.campaigns(self.at)
            offers = reader.suspect_offers(self.at, self._offers_after(), campaigns, customer,
                                           team=team, actor=owner, until=late)
            self._add_facts(reader, facts, (t["customer"] for t in offers))
            gaps.extend(self._offer_gaps(campaigns, offers, facts))
        return [g for g in gaps if (kind is None or g.kind == kind)
                and (team is None or g.team == team) and (owner is None or g.owner == owner)]

    def suspects(self, reader: FactsReader, kind: str | None = None,
                 until: datetime | None = None) -> tuple[str, tuple[Any, ...]]:
        """A SQL condition on ``gap_now`` (and its parameters: times derived from ``at``)
        true for every customer :meth:`customer_gaps` may find a gap of ``kind`` (None:
        any) for: each rule's time limit as an indexed comparison. With ``until``: for
        every customer with such a gap that began by then (a rule's ``since`` is its
        time limit's column plus a constant, or later: the limits of a time just after
        ``until`` select them)."""
        cfg, t = self.cfg, reader.time_param
        at = self.at if until is None else min(self.at, until + timedelta(microseconds=1))
        rules: dict[str, tuple[str, list[Any]]] = {}
        excluded = cfg.unowned_exclude_stages
        rules["unowned"] = ("owner IS NULL" + (
            f" AND stage NOT IN ({', '.join('?' * len(excluded))})" if excluded else ""),
            list(excluded))
        quiet = _before(at, timedelta(days=cfg.renewal_check_in_days))
        try:
            ends_by = at.date() + timedelta(days=cfg.renewal_window_days)
        except OverflowError:  # past year 9999: every contract ends by then
            ends_by = date.max
        rules["renewal_at_risk"] = (
            "paying = ? AND contract_end <= ? AND (last_check_in IS NULL OR last_check_in < ?)",
            [True, reader.date_param(ends_by), t(quiet)])
        for name, due, score in (("detractor_ignored", cfg.detractor_follow_up_days, "<= 6"),
                                 ("promoter_not_asked", cfg.promoter_ask_days, ">= 9")):
            rules[name] = (f"last_nps {score} AND last_nps_at < ?",
                           [t(_before(at, timedelta(days=due)))])
        by_limit: dict[int, list[str]] = {}
        for stage in dict.fromkeys([*self.model.names, *cfg.stall_after_days]):
            limit = stall_limit(self.model, cfg, stage)
            if limit is not None:
                by_limit.setdefault(limit, []).append(stage)
        rules["stalled"] = (" OR ".join(
            f"stage IN ({', '.join('?' * len(stages))}) AND stage_since < ?"
            for stages in by_limit.values()) or "1 = 0", [
            p for limit, stages in by_limit.items()
            for p in (*stages, t(_before(at, timedelta(days=limit))))])
        chosen = [rule for name, rule in rules.items() if kind in (None, name)]
        return (" OR ".join(f"({sql})" for sql, _ in chosen),
                tuple(p for _, params in chosen for p in params))

    def _add_facts(self, reader: FactsReader, facts: dict[str, CustomerFacts],
                   customers: Iterator[str]) -> None:
        """Read the facts of those ``customers`` not in ``facts`` yet."""
        missing = tuple(sorted(set(customers) - facts.keys()))
        if missing:
            facts.update(reader.customers(self.at, scope=Scope(ids=missing)))

    def all(self, reader: FactsReader, facts: dict[str, CustomerFacts],
            customer: Who = None) -> Iterator[Gap]:
        """Every gap of the customers of ``facts``."""
        for f in facts.values():
            yield from self.customer_gaps(f)
        yield from self.stale_handovers(reader, facts, customer)
        yield from self.bad_offers(reader, facts, customer)

    def lapsing(self, reader: FactsReader, found: list[Lapsing],
                customer: Who = None) -> Iterator[Gap]:
        """``lapsing`` gaps: of the customers ``found`` (:func:`lapsing_of`), those not on
        a contract nor churned at the time, with no check-in since p_alive fell."""
        wanted = {x.figures.customer: x for x in found if customer is None
                  or x.figures.customer == customer or (isinstance(customer, tuple)
                                                        and x.figures.customer in customer)}
        if not wanted:
            return
        facts = reader.customers(self.at, scope=among(tuple(sorted(wanted))))
        for name, x in wanted.items():
            f = facts.get(name)
            if f is None or f.paying or f.stage == CHURNED or (
                    f.last_check_in is not None and f.last_check_in >= x.since):
                continue
            c = x.figures
            yield self._gap(f, "lapsing", x.since, (
                f"probability alive {c.p_alive:.2f}, below {x.p_alive:g} since "
                f"{x.since:%Y-%m-%d}; {c.currency} {x.stake:,.2f} expected in "
                f"{x.horizon_days} days if still buying, in the top {x.top_share:.0%}; "
                "no check-in since"))

    def customer_gaps(self, f: CustomerFacts) -> Iterator[Gap]:
        """The gaps that depend on one customer's facts only."""
        cfg, at = self.cfg, self.at
        if f.owner is None and f.stage not in cfg.unowned_exclude_stages:
            since = f.owner_since or f.stage_since
            yield self._gap(f, "unowned", since, f"no owner in stage {f.stage}")
        if f.paying and f.contract_end is not None and (
            f.contract_end <= at.date() + timedelta(days=cfg.renewal_window_days)
        ):
            quiet = timedelta(days=cfg.renewal_check_in_days)
            if f.last_check_in is None or f.last_check_in < at - quiet:
                window = datetime.combine(
                    f.contract_end - timedelta(days=cfg.renewal_window_days), time(), UTC
                )
                since = window if f.last_check_in is None else max(window,
                                                                    f.last_check_in + quiet)
                last = f"last check-in {f.last_check_in:%Y-%m-%d}" if f.last_check_in \
                    else "never checked in"
                yield self._gap(f, "renewal_at_risk", since,
                                f"contract ends {f.contract_end}; {last}",
                                subject=(day(f.contract_end),))
        if f.last_nps is not None and f.last_nps_at is not None:
            yield from self._nps_gaps(f, f.last_nps, f.last_nps_at)
        limit = self.stall_limit(f.stage)
        if limit is not None and at > f.stage_since + timedelta(days=limit):
            yield self._gap(f, "stalled", f.stage_since + timedelta(days=limit),
                            f"in {f.stage} since {f.stage_since:%Y-%m-%d} "
                            f"(limit {limit} days)", subject=(moment(f.stage_since),))

    def _nps_gaps(self, f: CustomerFacts, score: int, answered: datetime) -> Iterator[Gap]:
        cfg, at = self.cfg, self.at
        due = answered + timedelta(days=cfg.detractor_follow_up_days)
        if score <= 6 and at > due and (f.last_check_in is None or f.last_check_in < answered):
            yield self._gap(f, "detractor_ignored", due,
                            f"NPS {score} on {answered:%Y-%m-%d}, no check-in since",
                            subject=(moment(answered),))
        due = answered + timedelta(days=cfg.promoter_ask_days)
        if score >= 9 and at > due and (
            f.last_advocacy_ask is None or f.last_advocacy_ask < answered
        ):
            yield self._gap(f, "promoter_not_asked", due,
                            f"NPS {score} on {answered:%Y-%m-%d}, never asked to advocate",
                            subject=(moment(answered),))

    def stale_handovers(self, reader: FactsReader, facts: dict[str, CustomerFacts],
                        customer: Who) -> Iterator[Gap]:
        sla = timedelta(days=self.cfg.handover_sla_days)
        yield from self._stale(reader.pending_handovers(self.at, self.at - sla, customer),
                               facts)

    def _stale(self, pending: list[dict[str, Any]],
               facts: dict[str, CustomerFacts]) -> Iterator[Gap]:
        sla = timedelta(days=self.cfg.handover_sla_days)
        for h in pending:
            f = facts.get(h["customer"])
            if f is None:
                continue
            yield Gap(
                h["customer"], "handover_stale", h["sent_at"] + sla, team=h["to_team"],
                owner=h["to_person"] or f.owner, stage=f.stage, ref=h["handover_id"],
                detail=f"handover {h['handover_id']} {h['from_team']} -> {h['to_team']} "
                       f"sent {h['sent_at']:%Y-%m-%d %H:%M} by {h['from_person']}, pending",
            )

    def _offers_after(self) -> datetime | None:
        lookback = self.cfg.offer_lookback_days
        return self.at - timedelta(days=lookback) if lookback is not None else None

    def bad_offers(self, reader: FactsReader, facts: dict[str, CustomerFacts],
                   customer: Who) -> Iterator[Gap]:
        campaigns = reader.campaigns(self.at)
        yield from self._offer_gaps(campaigns, reader.suspect_offers(
            self.at, self._offers_after(), campaigns, customer), facts)

    def _offer_gaps(self, campaigns: dict[str, CampaignVersion], offers: list[dict[str, Any]],
                    facts: dict[str, CustomerFacts]) -> Iterator[Gap]:
        for t in offers:
            f = facts.get(t["customer"])
            if f is None:
                continue
            cid, day = t["campaign"], t["at"].astimezone(UTC).date()
            c = campaigns.get(cid)
            if c is None:
                detail = f"touchpoint on {day} cites campaign {cid!r}, unknown to the registry"
            elif not c.running_on(day):
                ended = f", ended {c.ended_at:%Y-%m-%d}" if c.ended_at else ""
                detail = (f"touchpoint on {day} cites campaign {cid!r}, not running then "
                          f"(runs {c.starts}..{c.ends}{ended})")
            else:
                continue
            yield Gap(t["customer"], "unknown_offer", t["at"], team=t["team"],
                      owner=t["actor"], stage=f.stage, detail=detail, ref=cid)
