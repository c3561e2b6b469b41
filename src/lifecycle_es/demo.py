"""The demo: a deterministic, realistic multi-year history, written through the import path.

:func:`generate` returns JSON Lines command dicts (the import format) for ``customers``
customers over the three years before ``until``: campaigns announced, amended and ended;
leads with touchpoints citing them; stage progressions along the engine's stage model with
handovers between teams (accepted, rejected and re-sent, some left pending); owners assigned
and released; purchases, monthly payments, renewals, expansions, contractions, churns and
win-backs; NPS, CSAT and check-ins; advocacy requested and given (referrals name another
generated customer); a few voided events and backward stage moves; some stale handovers'
gaps assigned, snoozed or dismissed. The last sixth of the customers buy without a contract
(payments now and then until they stop for good), for the prediction (``lifecycle-es
predict``, the health factor still_buying, the gap lapsing). Some customers are left where
the gap checks find them: unowned, stale handovers, renewals at risk, ignored detractors,
stalled stages, promoters never asked, touchpoints citing an unknown or expired campaign,
valuable buyers lapsing. Same arguments, same output: only ``random.Random(seed)`` is used,
never the clock.

:func:`run_demo` (``lifecycle-es demo``) writes that history with ``engine.record_many`` and
prints what it wrote, then the stage counts of the caught-up read models.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from lifecycle_es.domain.gap_ids import gap_id
from lifecycle_es.domain.stage_model import CHURNED, StageModel
from lifecycle_es.domain.user import User
from lifecycle_es.errors import FieldProblem, InvalidInput, LifecycleError
from lifecycle_es.limits import MAX_DATE, MIN_DATE
from lifecycle_es.progress import track

if TYPE_CHECKING:
    from lifecycle_es.commands import Command
    from lifecycle_es.engine import ImportResult, LifecycleEngine

DAY = timedelta(days=1)
HISTORY_DAYS = 3 * 365
#: a handover pending longer than this is stale (issue 5 default SLA)
HANDOVER_SLA = timedelta(days=2)

_FIRST = ("ana", "ben", "chloe", "dev", "elif", "femi", "greta", "hugo", "ines", "jon", "kai",
          "lena", "mateo", "nora", "omar", "priya", "quinn", "rosa", "sami", "tara", "umar",
          "vera", "wen", "xavi", "yara", "zoe", "aiko", "bruno", "carla", "dario")
_LAST = ("silva", "novak", "khan", "meyer", "rossi", "dubois", "larsen", "tanaka", "okafor",
         "garcia", "nguyen", "kowalski", "fischer", "moreau", "ivanova", "smith", "haddad",
         "jensen", "costa", "weber", "yilmaz", "brown", "lopez", "sato", "murphy", "berg",
         "popescu", "ali", "kim", "torres")
_ADJ = ("Blue", "Nordic", "Bright", "Swift", "Quiet", "Iron", "Golden", "Urban", "Green",
        "Solid", "Clear", "Prime", "Silver", "Open", "Bold", "Rapid", "True", "North")
_NOUN = ("Harbor", "Falcon", "Ridge", "Maple", "Orbit", "Anchor", "Cedar", "Summit", "Beacon",
         "Delta", "Lantern", "Meadow", "Pioneer", "Quarry", "River", "Stone", "Willow", "Vector")
_KIND = ("Logistics", "Health", "Labs", "Foods", "Studio", "Retail", "Energy", "Finance",
         "Media", "Systems", "Travel", "Legal", "Robotics", "Apparel")
_SEGMENTS = (("smb", 0.6, (2_900, 29_900)), ("mid_market", 0.3, (30_000, 150_000)),
             ("enterprise", 0.1, (150_000, 900_000)))
_CURRENCIES = (("EUR", 0.5), ("USD", 0.35), ("GBP", 0.15))
_SOURCES = ("web", "paid_ads", "event", "referral", "partner", "webinar", "outbound")
_LEAD_CHANNELS = ("email", "webinar", "ads", "event", "call", "demo", "chat")
_PLANS = ("starter", "team", "business", "enterprise")
_GOALS = ("cut onboarding time", "replace spreadsheets", "one view of the customer",
          "automate renewals", "reduce churn", "report to the board monthly")
_FEATURES = ("dashboards", "api", "sso", "workflows", "reports", "integrations", "mobile app")
_RISKS = ("champion may leave", "tight budget", "competitor trial running", "legal review slow",
          "low engagement so far")
_OFFERS = ("first 3 months at a discount", "free onboarding package", "annual plan discount",
           "extra seats for free", "premium support included")
_CAMPAIGN_THEMES = ("Spring launch", "Summer webinar series", "Autumn upgrade", "Winter deal",
                    "Partner week", "Customer summit", "Product tour", "Referral programme")


class _Stop(Exception):
    """The story reached ``until``: nothing later is written."""


def default_until(now: datetime | None = None) -> date:
    """The first day of the current UTC month: demo histories end just before it."""
    return (now or datetime.now(UTC)).date().replace(day=1)


def parse_until(text: str | None) -> date | None:
    """``--until`` as a date (None: the default, see :func:`default_until`)."""
    if text is None:
        return None
    try:
        until = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput([FieldProblem("until", text, "not a date (YYYY-MM-DD)")],
                           "demo option") from None
    first, last = MIN_DATE.replace(year=MIN_DATE.year + 5), MAX_DATE.replace(year=MAX_DATE.year - 5)
    if not first <= until <= last:  # the history before it and the contracts after it fit
        raise InvalidInput([FieldProblem("until", text, f"the demo needs a date from {first} to "
                                                        f"{last} (the supported range, less "
                                                        "five years at each end)")],
                           "demo option")
    return until


def _iso(d: date) -> str:
    return d.isoformat()


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, min(d.day, 28))


class _World:
    """What all customers share: the model, the people per team, the campaigns, the output."""

    def __init__(self, customers: int, seed: int, model: StageModel, until: date,
                 pace: float = 1.0) -> None:
        self.rng = random.Random(seed)
        #: the work on gaps (assigned, snoozed, dismissed) draws from its own generator, so
        #: the rest of the history is what it was before the demo had any
        self.work_rng = random.Random(f"{seed}-gap-work")
        self.stale_seen = 0  # handovers left pending so far
        self.model = model
        self.pace = pace  # how many times as often a paying customer's recurring events come
        self.shoppers = 0  # the last ones buy without a contract (_world sets how many)
        self.shop_rng = random.Random(seed)
        self.until = until
        self.end = datetime(until.year, until.month, until.day, tzinfo=UTC)
        self.start = self.end - HISTORY_DAYS * DAY
        self.ids = [f"cus-{i:06d}" for i in range(1, customers + 1)]
        self.out: list[tuple[datetime, dict[str, Any]]] = []
        teams = model.teams

        def pick(name: str, fallback: str) -> str:
            return name if name in teams else fallback

        names = model.names
        self.first_paying = next(i for i, s in enumerate(model.stages) if s.paying)
        self.marketing = pick("marketing", model.stages[0].team)
        self.sales = pick("sales", model.stages[max(self.first_paying - 1, 0)].team)
        self.success = pick("success", model.stages[self.first_paying].team)
        self.support = pick("support", self.success)
        self.lead_path = names[1 : self.first_paying + 1]  # stages walked up to the purchase
        self.track = names[self.first_paying :]  # stages of a paying customer
        per_team = max(3, min(60, 3 + customers // 100))
        pool = [f"{f}.{la}" for f in _FIRST for la in _LAST]
        chosen = self.rng.sample(pool, min(len(pool), per_team * len(teams)))
        self.people = {t: chosen[i * per_team : (i + 1) * per_team] or [f"{t}.lead"]
                       for i, t in enumerate(teams)}
        self.campaigns: list[tuple[str, date, date]] = []  # (id, first day, last day running)
        self.running: dict[date, list[str]] = {}

    def person(self, team: str) -> str:
        return self.rng.choice(self.people[team])

    def team_of(self, stage: str) -> str:
        return self.model.stage(stage).team

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def add(self, at: datetime, command: dict[str, Any]) -> None:
        self.out.append((at, command))

    # --------------------------------------------------------------- campaigns

    def announce_campaigns(self, count: int) -> None:
        """Campaigns spread over the history; some amended (extended), some ended early."""
        rng = self.rng
        for k in range(count):
            starts = (self.start + rng.uniform(-30, HISTORY_DAYS + 30) * DAY).date()
            ends = starts + rng.randint(21, 90) * DAY
            announced = _clock(rng, starts - rng.randint(3, 21) * DAY)
            if announced >= self.end:
                continue
            cid = f"cmp-{k + 1:04d}"
            team = self.sales if self.chance(0.2) else self.marketing
            actor = self.person(team)
            theme = rng.choice(_CAMPAIGN_THEMES)
            segment = rng.choice((None, "smb", "mid_market", "enterprise"))
            self.add(announced, {
                "type": "campaign_announced", "campaign": cid, "at": announced, "actor": actor,
                "team": team, "name": f"{theme} {starts.year}", "offer": rng.choice(_OFFERS),
                "discount_percent": rng.choice((0, 5, 10, 15, 20, 25, 30)),
                "starts": _iso(starts), "ends": _iso(ends), "segment": segment,
                "owning_team": team,
            })
            last = ends
            if self.chance(0.25):  # extended while running
                amended = _clock(rng, starts + rng.randint(0, (ends - starts).days - 1) * DAY)
                if amended > announced and amended < self.end:
                    last = ends + rng.randint(14, 30) * DAY
                    self.add(amended, {"type": "campaign_amended", "campaign": cid,
                                       "at": amended, "actor": actor, "team": team,
                                       "ends": _iso(last)})
            ended: datetime | None = None
            if self.chance(0.15):  # stopped early
                last = starts + rng.randint(5, 20) * DAY
                ended = _clock(rng, last)
            elif self.chance(0.3):  # closed in the registry after it ran
                ended = _clock(rng, last + rng.randint(1, 10) * DAY)
            if ended is not None and self.out[-1][0] < ended < self.end:
                self.add(ended, {"type": "campaign_ended", "campaign": cid, "at": ended,
                                 "actor": actor, "team": team,
                                 "reason": rng.choice(("budget moved", "ran its course", None))})
            else:
                last = max(last, ends) if ended is None else last
            self.campaigns.append((cid, starts, last))
            for i in range((last - starts).days + 1):
                self.running.setdefault(starts + i * DAY, []).append(cid)

    def cite(self, day: date) -> str | None:
        """A campaign running on ``day``; now and then an unknown or expired one."""
        if self.chance(0.04):
            if self.chance(0.5):
                return f"deal-{self.rng.randint(100, 999)}"  # never announced
            over = [c for c, _, last in self.campaigns[-40:] if last < day]
            if over:
                return self.rng.choice(over)  # no longer running
        running = self.running.get(day)
        return self.rng.choice(running) if running else None


def _clock(rng: random.Random, day: date) -> datetime:
    """A business-hours time on ``day`` (UTC)."""
    return datetime(day.year, day.month, day.day, rng.randint(8, 17), rng.randint(0, 59),
                    tzinfo=UTC)


class _Life:
    """One customer's story: emits commands in time order, consistent with the rules."""

    def __init__(self, w: _World, ext: str) -> None:
        self.w, self.rng, self.ext = w, w.rng, ext
        self.t = w.start
        self.version = 0
        self.stage = ""
        self.owner: str | None = None
        self.owner_team: str | None = None
        self.paying = False
        self.mrr = 0
        self.currency = w.rng.choices([c for c, _ in _CURRENCIES],
                                      [p for _, p in _CURRENCIES])[0]
        self.contract_end = w.until
        self.handovers = 0
        self.pending: tuple[str, str, str, str] | None = None  # id, to team, person, stage
        self.last_nps = 10
        self.agenda: list[tuple[datetime, int, str]] = []
        self.seq = 0
        self.keep_unowned = False
        #: days between check-ins: a fifth of the customers hear from their owner rarely
        self.check_in_every = (50.0, 130.0) if w.chance(0.2) else (35.0, 110.0)
        self.mrr_range = _SEGMENTS[0][2]
        self.dup = 0  # version of a duplicate payment to void
        self.asked = "testimonial"  # kind of the latest advocacy request

    # ------------------------------------------------------------------ output

    def emit(self, type_: str, team: str, actor: str | None = None,
             at: datetime | None = None, **fields: Any) -> int:
        """Append one command at ``at`` (default: now); stop the story at ``until``."""
        at = max(at or self.t, self.t)
        if at >= self.w.end:
            raise _Stop
        self.t = at
        self.w.add(at, {"type": type_, "customer": self.ext, "at": at,
                        "actor": actor or self.w.person(team), "team": team, **fields})
        self.version += 1
        return self.version

    def wait(self, lo: float, hi: float) -> datetime:
        """Move the clock forward by ``lo``..``hi`` days (business hours)."""
        self.t = max(self.t, _clock(self.rng, (self.t + self.rng.uniform(lo, hi) * DAY).date()))
        return self.t

    def actor(self, team: str) -> str:
        return self.owner if self.owner and self.owner_team == team else self.w.person(team)

    # ------------------------------------------------------------------ pieces

    def move(self, to: str, reason: str | None = None) -> bool:
        """Change stage when the model allows it."""
        if to == self.stage or to not in self.w.model.allowed_targets(self.stage):
            return False
        team = self.w.team_of(to)
        self.emit("stage_changed", team, self.actor(team), to_stage=to, reason=reason)
        self.stage = to
        return True

    def assign(self, team: str) -> None:
        person = self.w.person(team)
        self.emit("owner_assigned", team, self.actor(team) if self.owner else None,
                  owner=person)
        self.owner, self.owner_team = person, team

    def touchpoint(self, channel: str | None = None) -> None:
        team = self.w.marketing if self.stage == self.w.model.names[0] else self.w.sales
        campaign = self.w.cite(self.t.date()) if self.w.chance(0.5) else None
        self.emit("touchpoint", team, channel=channel or self.rng.choice(_LEAD_CHANNELS),
                  campaign_id=campaign,
                  notes=self.rng.choice((None, "asked about pricing", "downloaded the guide",
                                         "wants a demo for the team", "compared with a rival")))

    def send_handover(self, to_stage: str, to_team: str, full: bool = True) -> None:
        from_team = self.owner_team or self.w.team_of(self.stage)
        self.handovers += 1
        hid = f"{self.ext}-h{self.handovers}"
        person = self.w.person(to_team)
        rng = self.rng
        document: dict[str, Any] = {
            "goals": rng.sample(_GOALS, rng.randint(1, 3)),
            "features_of_interest": rng.sample(_FEATURES, rng.randint(1, 3)),
            "features_known": rng.sample(_FEATURES, rng.randint(0, 2)) if full else [],
            "risks": rng.sample(_RISKS, rng.randint(0, 2)) if full else [],
            "notes": rng.choice((None, "prefers email", "decision maker is the CFO")),
        }
        self.emit("handover_sent", from_team, self.actor(from_team), handover_id=hid,
                  from_team=from_team, to_team=to_team, to_person=person, document=document)
        self.pending = (hid, to_team, person, to_stage)

    def decide_handover(self) -> bool:
        """Accept (owner changes, stage moves) or reject (re-sent later); True when accepted.

        Handovers sent in the last weeks are sometimes left pending (the stale-handover gap).
        """
        assert self.pending is not None
        hid, team, person, to_stage = self.pending
        if self.w.end - self.t < 60 * DAY and self.w.chance(0.5):
            self.work_on_stale(hid, team, person)
            raise _Stop  # nobody answered it
        self.wait(0.05, 3)
        if self.w.chance(0.1):
            self.emit("handover_rejected", team, person, handover_id=hid,
                      reason=self.rng.choice(("goals missing", "wrong team", "no risks noted")))
            self.pending = None
            self.wait(1, 4)
            self.send_handover(to_stage, team)
            return self.decide_handover()
        self.emit("handover_accepted", team, person, handover_id=hid)
        self.owner, self.owner_team, self.pending = person, team, None
        self.move(to_stage)
        return True

    def work_on_stale(self, hid: str, team: str, person: str) -> None:
        """The receiving team works on the gap of a handover nobody answered: assigns it,
        then snoozes (every fourth) or dismisses (every fourth) it; the story ends after."""
        rng, self.w.stale_seen = self.w.work_rng, self.w.stale_seen + 1
        gap = gap_id("handover_stale", self.ext, hid)
        lead = rng.choice(self.w.people[team])
        self.emit("gap_assigned", team, lead, at=self.t + rng.uniform(2.5, 6) * DAY,
                  gap_id=gap, assignee=person)
        turn = self.w.stale_seen % 4  # dismissed, snoozed, left, left: most stay open
        if turn == 2:
            until = (self.t + rng.randint(5, 40) * DAY).date()
            self.emit("gap_snoozed", team, person, at=self.t + rng.uniform(0.1, 2) * DAY,
                      gap_id=gap, until=_iso(until),
                      reason=rng.choice(("customer on holiday", "waiting for the contract")))
        elif turn == 1:
            self.emit("gap_dismissed", team, person, at=self.t + rng.uniform(0.1, 2) * DAY,
                      gap_id=gap, reason=rng.choice(("handled by phone", "duplicate request")))

    def enter(self, to: str) -> None:
        """Go to stage ``to``, with a handover when its team differs from the owner's."""
        team = self.w.team_of(to)
        if self.owner is None and not self.keep_unowned and self.w.chance(0.9):
            self.assign(team)
        if self.owner is not None and self.owner_team != team:
            self.send_handover(to, team)
            self.decide_handover()
        else:
            self.move(to)

    # ------------------------------------------------------------------- story

    def live(self) -> None:
        w, rng = self.w, self.rng
        self.t = _clock(rng, (w.start + (HISTORY_DAYS - 1) * rng.random() ** 0.6 * DAY).date())
        seg = rng.choices(_SEGMENTS, [p for _, p, _ in _SEGMENTS])[0]
        self.mrr_range = seg[2]
        first = w.model.names[0]
        self.emit("customer_registered", w.team_of(first),
                  name=f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} {rng.choice(_KIND)}",
                  segment=seg[0], source=rng.choice(_SOURCES), stage=first)
        self.stage = first
        self.keep_unowned = w.chance(0.05)
        if not self.keep_unowned and w.chance(0.85):
            self.assign(w.team_of(first))
        for to in w.lead_path:
            for _ in range(rng.randint(1, 2)):
                self.wait(2, 25)
                self.touchpoint()
                if w.chance(0.02):
                    self.wait(0, 3)
                    self.emit("event_voided", self.owner_team or w.marketing, self.owner,
                              voided_version=self.version, reason="logged on the wrong customer")
            if w.chance(0.2):
                return  # lost lead: stays (and stalls) where it is
            if w.chance(0.08) and w.model.names.index(self.stage) > 0:
                back = w.model.names[w.model.names.index(self.stage) - 1]
                before = self.stage
                if self.move(back, "went quiet: back to nurturing"):
                    self.wait(10, 60)
                    self.touchpoint("email")
                    self.wait(1, 10)
                    self.move(before, "interested again")
            if to == w.track[0]:
                self.warm_handoff()
                self.wait(3, 30)
                self.purchase()
            self.wait(1, 20)
            self.enter(to)
        self.paying_life()

    def warm_handoff(self) -> None:
        """Sales asks support to join a call; the sales rep stays the owner."""
        if not self.w.chance(0.15) or self.owner_team != self.w.sales:
            return
        rep, stage = self.owner, self.stage
        self.send_handover(stage, self.w.support, full=False)
        self.wait(0.05, 2)
        hid, team, person, _ = self.pending  # type: ignore[misc]
        self.emit("handover_accepted", team, person, handover_id=hid)
        self.pending = None
        self.wait(0, 2)
        self.emit("owner_assigned", self.w.sales, rep, owner=rep)
        self.owner, self.owner_team = rep, self.w.sales

    def purchase(self) -> None:
        rng = self.rng
        lo, hi = self.mrr_range
        self.mrr = rng.randint(lo, hi) // 100 * 100
        start = self.t.date()
        self.contract_end = start.replace(year=start.year + 1) if start.day < 29 else (
            _add_months(start, 12))
        self.emit("purchase", self.w.sales, self.actor(self.w.sales),
                  plan=rng.choice(_PLANS), mrr=self.mrr, currency=self.currency,
                  contract_start=_iso(start), contract_end=_iso(self.contract_end))
        self.paying = True

    # ------------------------------------------------------------- paying life

    def schedule(self, at: datetime, what: str) -> None:
        self.seq += 1
        heapq.heappush(self.agenda, (at, self.seq, what))

    def in_days(self, lo: float, hi: float) -> datetime:
        return _clock(self.rng, (self.t + self.rng.uniform(lo, hi) / self.w.pace * DAY).date())

    def paying_life(self) -> None:
        """Run the recurring parts of a paying customer's life until churn or ``until``."""
        handlers: dict[str, Callable[[], None]] = {
            "pay": self.pay, "check_in": self.check_in, "nps": self.nps,
            "support": self.support, "progress": self.progress, "renew": self.renew,
            "expand": self.expand, "contract": self.contract, "owner_leaves": self.owner_leaves,
            "reassign": self.reassign, "follow_up": self.follow_up, "ask": self.ask,
            "give": self.give, "void_payment": self.void_payment,
        }
        self.agenda, start = [], self.t
        self.schedule(start + DAY, "pay")
        self.schedule(self.in_days(10, 40), "check_in")
        self.schedule(self.in_days(60, 120), "nps")
        self.schedule(self.in_days(20, 120), "support")
        self.schedule(self.in_days(20, 80), "progress")
        renew_at = datetime(self.contract_end.year, self.contract_end.month,
                            self.contract_end.day, 10, tzinfo=UTC)
        self.schedule(renew_at - self.rng.randint(0, 14) * DAY, "renew")
        self.schedule(self.in_days(90, 500), "expand")
        self.schedule(self.in_days(150, 900), "contract")
        if self.w.chance(0.25):
            self.schedule(self.in_days(30, 700), "owner_leaves")
        while self.agenda:
            at, _, what = heapq.heappop(self.agenda)
            if at >= self.w.end:
                raise _Stop
            self.t = max(self.t, at)
            handlers[what]()
            if not self.paying:
                break
        self.after_churn()

    def pay(self) -> None:
        v = self.emit("payment", self.w.success, "billing", amount=self.mrr,
                      currency=self.currency)
        if self.w.chance(0.01):  # charged twice by mistake: voided later
            self.emit("payment", self.w.success, "billing", amount=self.mrr,
                      currency=self.currency)
            self.dup = v + 1
            self.schedule(self.in_days(1, 10), "void_payment")
        self.schedule(self.t + 30 / self.w.pace * DAY, "pay")

    def void_payment(self) -> None:
        self.emit("event_voided", self.w.success, "billing", voided_version=self.dup,
                  reason="duplicate charge refunded")

    def check_in(self) -> None:
        team = self.owner_team or self.w.success
        self.emit("check_in", team, self.actor(team),
                  notes=self.rng.choice((None, "all good", "asked for training",
                                         "usage dropping", "planning to add seats")))
        self.schedule(self.in_days(*self.check_in_every), "check_in")

    def follow_up(self) -> None:
        team = self.owner_team or self.w.success
        self.emit("check_in", team, self.actor(team), notes="called after a low NPS")

    def nps(self) -> None:
        score = self.rng.choices(range(11), (2, 1, 2, 2, 3, 4, 6, 9, 12, 14, 14))[0]
        self.last_nps = score
        self.emit("nps_answer", self.w.success, "survey",
                  score=score, comment=self.rng.choice((None, "great support", "too pricey",
                                                        "missing reports", "love it")))
        if score <= 6 and self.w.chance(0.7):
            self.schedule(self.in_days(1, 6), "follow_up")
        elif score >= 9 and self.w.chance(0.65):
            self.schedule(self.in_days(3, 25), "ask")
        self.schedule(self.in_days(150, 210), "nps")

    def ask(self) -> None:
        self.asked = self.rng.choice(("testimonial", "case_study", "review", "referral"))
        team = self.owner_team or self.w.success
        self.emit("advocacy_requested", team, self.actor(team), kind=self.asked)
        if self.w.chance(0.55):
            self.schedule(self.in_days(5, 40), "give")

    def give(self) -> None:
        referred = None
        if self.asked == "referral":
            referred = self.rng.choice(self.w.ids)
            if referred == self.ext:
                referred = self.w.ids[0] if self.ext != self.w.ids[0] else self.w.ids[-1]
        team = self.owner_team or self.w.success
        self.emit("advocacy_given", team, self.actor(team), kind=self.asked,
                  referred_customer=referred,
                  details=self.rng.choice((None, "quote for the website", "G2 review")))
        if self.pending is None and len(self.w.track) > 2:
            self.move(self.w.track[-1], "gave advocacy")

    def support(self) -> None:
        agent = self.w.person(self.w.support)
        self.emit("touchpoint", self.w.support, agent, channel="support_ticket",
                  campaign_id=None, notes=self.rng.choice(("login issue", "billing question",
                                                           "feature request", "bug report")))
        self.wait(0, 2)
        self.emit("csat_answer", self.w.support, agent,
                  score=self.rng.choices((1, 2, 3, 4, 5), (1, 1, 2, 4, 5))[0], comment=None)
        self.schedule(self.in_days(60, 300), "support")

    def progress(self) -> None:
        """Advance along the paying stages (advocacy is reached by giving advocacy)."""
        track = self.w.track
        normal = track[:-1] if len(track) > 2 else track
        if self.pending is not None:
            self.decide_handover()
        elif self.stage in normal and self.w.chance(0.1) and normal.index(self.stage) > 0:
            back = normal[normal.index(self.stage) - 1]
            if self.w.team_of(back) == self.owner_team:
                self.move(back, "needs onboarding again")
        elif self.stage in normal and normal.index(self.stage) < len(normal) - 1:
            to = normal[normal.index(self.stage) + 1]
            team = self.w.team_of(to)
            if self.owner is not None and self.owner_team != team:
                self.send_handover(to, team)
                self.schedule(self.in_days(0, 2), "progress")
                return
            self.move(to)
        elif self.stage not in track:  # e.g. a handover left earlier: catch up
            self.enter(track[0])
        self.schedule(self.in_days(30, 120), "progress")

    def renew(self) -> None:
        risk = 0.22 + (0.2 if self.last_nps <= 6 else 0.0)
        end = self.contract_end
        if self.w.chance(risk):
            self.emit("churned", self.owner_team or self.w.success, self.owner,
                      at=max(self.t, datetime(end.year, end.month, end.day, 9, tzinfo=UTC)),
                      reason=self.rng.choice(("budget cut", "moved to a competitor",
                                              "company closed", None)))
            self.paying, self.mrr, self.stage = False, 0, CHURNED
            return
        new_mrr = None
        if self.w.chance(0.3):
            new_mrr = self.mrr * self.rng.randint(103, 110) // 100
            self.mrr = new_mrr
        self.contract_end = _add_months(end, 12)
        self.emit("renewal", self.owner_team or self.w.success, self.owner,
                  new_contract_end=_iso(self.contract_end), new_mrr=new_mrr)
        e = self.contract_end
        self.schedule(datetime(e.year, e.month, e.day, 10, tzinfo=UTC)
                      - self.rng.randint(0, 14) * DAY, "renew")

    def expand(self) -> None:
        delta = max(100, self.mrr * self.rng.randint(10, 40) // 100 // 100 * 100)
        self.mrr += delta
        self.emit("expansion", self.w.sales, mrr_delta=delta)
        self.schedule(self.in_days(120, 600), "expand")

    def contract(self) -> None:
        delta = self.mrr * self.rng.randint(10, 30) // 100 // 100 * 100
        if 0 < delta < self.mrr:
            self.mrr -= delta
            self.emit("contraction", self.owner_team or self.w.success, self.owner,
                      mrr_delta=delta)
        self.schedule(self.in_days(200, 900), "contract")

    def owner_leaves(self) -> None:
        if self.owner is None or self.pending is not None:
            return
        team = self.owner_team or self.w.success
        self.emit("owner_released", team, self.owner,
                  reason=self.rng.choice(("left the company", "territory change")))
        self.owner = self.owner_team = None
        if not self.w.chance(0.3):
            self.schedule(self.in_days(2, 20), "reassign")

    def reassign(self) -> None:
        if self.owner is None:
            self.assign(self.w.team_of(self.stage) if self.stage != CHURNED else self.w.success)

    def after_churn(self) -> None:
        """Some churned customers are won back later and start paying again."""
        if not self.w.chance(0.3):
            return
        self.wait(60, 300)
        self.touchpoint("email")
        self.wait(5, 40)
        self.mrr = max(100, self.mrr or self.rng.randint(29, 299) * 100)
        self.emit("won_back", self.w.sales, mrr=self.mrr)
        self.stage, self.paying = self.w.model.reentry_stage, True
        self.contract_end = _add_months(self.t.date(), 12)
        self.emit("renewal", self.w.sales, new_contract_end=_iso(self.contract_end),
                  new_mrr=None)
        if self.owner is None:
            self.assign(self.w.team_of(self.stage))
        self.paying_life()


#: one customer in this many (the last ones) buys without a contract
SHOPPER_SHARE = 6


class _Shopper:
    """A customer buying without a contract: purchases at its own Poisson rate until it
    stops for good (after a purchase, with its own probability), each of a value around
    its own mean; its owner checks in now and then, or never."""

    def __init__(self, w: _World, ext: str, rng: random.Random) -> None:
        self.w, self.ext, self.rng = w, ext, rng
        self.currency = rng.choices([c for c, _ in _CURRENCIES],
                                    [p for _, p in _CURRENCIES])[0]

    def emit(self, at: datetime, type_: str, team: str, actor: str, **fields: Any) -> None:
        if at >= self.w.end:
            raise _Stop
        self.w.add(at, {"type": type_, "customer": self.ext, "at": at, "actor": actor,
                        "team": team, **fields})

    def live(self) -> None:
        w, rng = self.w, self.rng
        stage = next((s.name for s in w.model.stages if s.paying and s.stall_after_days is None),
                     w.track[-1])
        team = w.team_of(stage)
        t = _clock(rng, (w.start + rng.uniform(0, HISTORY_DAYS - 30) * DAY).date())
        owner = rng.choice(w.people[team])
        self.emit(t, "customer_registered", team, owner,
                  name=f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} {rng.choice(_KIND)}",
                  segment="smb", source=rng.choice(_SOURCES), stage=stage)
        self.emit(t, "owner_assigned", team, owner, owner=owner)
        days_between = 1 / rng.gammavariate(2.0, 1 / 80)  # mean gap ~40 days
        stop = rng.betavariate(1.0, 8.0)
        spend = rng.gammavariate(4.0, 2_500)  # minor units
        keeps_in_touch = rng.random() < 0.4
        next_check_in = t + rng.uniform(30, 120) * DAY
        while True:
            amount = max(100, round(rng.gammavariate(6.0, spend / 6) / 100) * 100)
            self.emit(t, "payment", team, "shop", amount=amount, currency=self.currency)
            last = t
            if rng.random() < stop:
                break
            t = _clock(rng, (t + max(1.0, rng.expovariate(1 / days_between)) * DAY).date())
            while keeps_in_touch and next_check_in < t:
                self.emit(next_check_in, "check_in", team, owner, notes=None)
                next_check_in += rng.uniform(60, 150) * DAY
        if rng.random() < 0.3:  # someone noticed the silence
            self.emit(_clock(rng, (last + rng.uniform(60, 300) * DAY).date()), "check_in",
                      team, owner, notes="has not ordered for a while")


def generate(customers: int, seed: int, model: StageModel, until: date,
             pace: float = 1.0) -> list[dict[str, Any]]:
    """Import-format command dicts for ``customers`` customers over three years before ``until``.

    Deterministic: the same arguments give the same list. Times are UTC and strictly before
    ``until`` (midnight UTC); commands are in time order (each aggregate's own in order).
    ``pace`` makes a paying customer's recurring events (payments, check-ins, surveys, ...)
    come that many times as often: longer histories of the same customers (benchmarks).
    """
    commands = []
    for at, cmd in (item for part in _parts(_world(customers, seed, model, until, pace),
                                            customers) for item in part):
        cmd["at"] = at.isoformat()
        commands.append(cmd)
    return commands


def write_jsonl(path: str, customers: int, seed: int, model: StageModel, until: date, *,
                pace: float = 1.0, part: int = 1000) -> int:
    """Write the history :func:`generate` returns to ``path`` as JSON Lines; its lines.

    The same lines in the same order, made ``part`` customers at a time (each part sorted
    into a temporary file, then the parts merged), so that memory holds one part, not the
    whole history (10M events: about 200 MB instead of some 10 GB).
    """
    w = _world(customers, seed, model, until, pace)
    lines = 0
    with tempfile.TemporaryDirectory(prefix="demo_parts_") as tmp:
        names = []
        for n, items in enumerate(_parts(w, part)):
            names.append(os.path.join(tmp, f"{n}.jsonl"))
            with open(names[-1], "wb") as f:
                for at, cmd in items:  # a fixed-width time first, to merge on
                    cmd["at"] = at.isoformat()
                    f.write(at.strftime("%Y%m%d%H%M%S%f ").encode() + orjson.dumps(cmd) + b"\n")
        with contextlib.ExitStack() as stack, open(path, "wb") as out:
            files = [stack.enter_context(open(name, "rb")) for name in names]
            # ties keep the order of the parts, as generate's stable sort keeps it
            for line in heapq.merge(*files, key=lambda line: line[:21]):
                out.write(line[21:])
                lines += 1
    return lines


def _world(customers: int, seed: int, model: StageModel, until: date,
           pace: float) -> _World:
    """The world of a history, its campaigns announced."""
    if customers < 1:
        raise InvalidInput([FieldProblem("customers", customers, "must be at least 1")], "demo")
    if not 0.1 <= pace <= 100:
        raise InvalidInput([FieldProblem("pace", pace, "must be from 0.1 to 100")], "demo")
    w = _World(customers, seed, model, until, pace)
    w.announce_campaigns(36 + customers // 100)
    w.shoppers = customers // SHOPPER_SHARE
    w.shop_rng = random.Random(seed * 7919 + 17)  # their own stream: the others' stories stay
    return w


def _parts(w: _World, size: int) -> Iterator[list[tuple[datetime, dict[str, Any]]]]:
    """The commands of ``size`` customers at a time (the campaigns with the first part),
    each part in time order."""
    with track("demo: generate", "customers") as progress:
        for start in range(0, len(w.ids), size):
            for n, ext in enumerate(w.ids[start:start + size], start=start + 1):
                with contextlib.suppress(_Stop):
                    if n > len(w.ids) - w.shoppers:
                        _Shopper(w, ext, w.shop_rng).live()
                    else:
                        _Life(w, ext).live()
                progress(n, len(w.ids))
            items, w.out = w.out, []
            items.sort(key=lambda item: item[0])
            yield items


# ------------------------------------------------------------------------ demo


#: how the log names the events of the console's users (not of the lifecycle)
_USER_TOPIC = f"{User.__module__}:"
#: events read at a time while looking for one that is not a user's
_PAGE = 1000


def check_empty(engine: LifecycleEngine) -> None:
    """Refuse to add a second demo history to a store that already has customers or
    campaigns (users of the console, added before the demo, are no history)."""
    log = engine.event_log
    start = 1
    while page := log.page(start, _PAGE):
        if any(not n.topic.startswith(_USER_TOPIC) for n in page):
            raise LifecycleError(
                f"store {engine.store.redacted()} already has customers; use a new --store"
            )
        start = page[-1].id + 1


def parse_all(commands: list[dict[str, Any]]) -> list[Command]:
    """Validate import-format dicts into commands (every problem listed, line numbers 1..)."""
    from lifecycle_es.commands import parse_command

    parsed: list[Command] = []
    problems: list[FieldProblem] = []
    for number, data in enumerate(commands, start=1):
        try:
            parsed.append(parse_command(data, number))
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput(problems, "demo history")
    return parsed


def write(engine: LifecycleEngine, commands: list[dict[str, Any]]) -> ImportResult:
    """Validate and record the commands through the import path (all or nothing)."""
    return engine.record_many(parse_all(commands))
