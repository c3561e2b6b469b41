"""The Customer aggregate: one per customer, every interaction an immutable event.

Commands (the public methods) check the rules and trigger events; events (the nested classes)
only fold facts into state, so replaying them always reproduces the same state. A voided event
is folded out by re-folding the customer's events without it. A customer object does not keep
its history: it is loaded from a snapshot plus the events after it (:meth:`Customer.replay`,
``domain/customer_snapshot.py``), keeps only the events applied to it since (``recent``), and
re-reads its stored events from the store (``origin.stored``) when a void needs them.

Fields holding personal data are listed in each event class's ``PERSONAL`` tuple: the store
encrypts them under the customer's own key, and erasing the customer (``Erased``) deletes that
key, after which they read as placeholders (crypto-shredding; docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from lifecycle_es.domain.gap_ids import GapRef
from lifecycle_es.domain.ids import customer_id
from lifecycle_es.domain.money import Money
from lifecycle_es.domain.stage_model import CHURNED, StageModel
from lifecycle_es.domain.trigger import LeanTrigger, emit, now, take_pending
from lifecycle_es.errors import InvariantViolation, TransitionNotAllowed
from lifecycle_es.privacy import ERASED

ADVOCACY_KINDS = ("testimonial", "case_study", "review", "referral")


@dataclass
class Handover:
    """State of one handover as the customer aggregate sees it."""

    handover_id: str
    from_team: str
    to_team: str
    to_person: str | None
    sent_at: datetime
    status: str = "pending"  # pending | accepted | rejected
    decided_at: datetime | None = None


@dataclass
class CustomerState:
    """Everything a customer's events fold into (reset and re-folded when one is voided)."""

    external_id: str = ""
    name: str = ""
    segment: str = ""
    source: str = ""
    registered_at: datetime | None = None
    stage: str = ""
    stage_since: datetime | None = None
    regressions: int = 0
    owner: str | None = None
    owner_team: str | None = None
    paying: bool = False
    plan: str | None = None
    mrr: int = 0
    currency: str | None = None
    contract_end: date | None = None
    total_paid: int = 0
    handovers: dict[str, Handover] = field(default_factory=dict)
    last_nps: int | None = None
    last_nps_at: datetime | None = None
    last_csat: int | None = None
    last_check_in_at: datetime | None = None
    advocacy_requested: int = 0
    advocacy_given: int = 0
    last_event_at: datetime | None = None
    erased_at: datetime | None = None

    def copy(self) -> CustomerState:
        """An independent copy (the handovers are copied too: folding changes them)."""
        return replace(self, handovers={k: replace(h) for k, h in self.handovers.items()})


@dataclass
class Origin:
    """Where a customer object comes from: the version it was loaded at (0: created here),
    how many events were folded to load it (after its snapshot, if any), and how to read
    its stored events up to a version (given by the repository that loaded it). ``base``,
    when kept (:meth:`Customer.rebase`), is the state folded from the events up to
    ``version``: a void of a later event refolds from it instead of reading them.
    ``snapshot`` is the version of its latest snapshot (0: none), so a load folds the
    events after it (:attr:`Customer.unsnapshotted`)."""

    version: int = 0
    replayed: int = 0
    stored: Callable[[int], Iterable[Customer.Event]] | None = None
    base: CustomerState | None = None
    snapshot: int = 0


class Customer(LeanTrigger, Aggregate):
    """A customer's whole lifecycle. Identity: UUID5 of the caller's external id."""

    class Event(Aggregate.Event):
        """Base of every customer event: who did it, for which team, and when (business time)."""

        customer: str
        occurred_at: datetime
        actor: str
        team: str
        correlation_id: str | None
        causation_id: str | None

        TYPE: ClassVar[str] = ""
        PERSONAL: ClassVar[tuple[str, ...]] = ()
        #: whether the event is something that happened with the customer (it moves
        #: ``last_event_at``); an erasure is not
        ACTIVITY: ClassVar[bool] = True

        def apply(self, aggregate: Customer) -> None:
            aggregate.recent.append(self)
            self.fold_all(aggregate.state)

        def fold_all(self, s: CustomerState) -> None:
            """:meth:`fold`, and the time of the latest activity."""
            if self.ACTIVITY:
                s.last_event_at = self.occurred_at
            self.fold(s)

        def fold(self, s: CustomerState) -> None:
            """Fold this event's facts into the state (pure: no checks, no I/O)."""

        def money(self, m: Money) -> Money:
            """The money position after this event (``m`` for events that leave it)."""
            return m

        def fold_money(self, s: CustomerState) -> None:
            s.paying, s.mrr, s.currency, s.contract_end = self.money(
                Money(s.paying, s.mrr, s.currency, s.contract_end))

    class Registered(Event, Aggregate.Created):
        name: str
        segment: str
        source: str
        stage: str
        TYPE = "customer_registered"
        PERSONAL = ("name",)

        def fold(self, s: CustomerState) -> None:
            s.external_id, s.name, s.segment, s.source = (
                self.customer,
                self.name,
                self.segment,
                self.source,
            )
            s.registered_at = s.stage_since = self.occurred_at
            s.stage = self.stage

    class Touchpoint(Event):
        channel: str
        campaign_id: str | None
        notes: str | None
        TYPE = "touchpoint"
        PERSONAL = ("notes",)

    class StageChanged(Event):
        from_stage: str
        to_stage: str
        reason: str | None
        regression: bool
        TYPE = "stage_changed"
        PERSONAL = ("reason",)

        def fold(self, s: CustomerState) -> None:
            s.stage, s.stage_since = self.to_stage, self.occurred_at
            s.regressions += int(self.regression)

    class OwnerAssigned(Event):
        owner: str
        TYPE = "owner_assigned"

        def fold(self, s: CustomerState) -> None:
            s.owner, s.owner_team = self.owner, self.team

    class OwnerReleased(Event):
        reason: str | None
        TYPE = "owner_released"
        PERSONAL = ("reason",)

        def fold(self, s: CustomerState) -> None:
            s.owner = s.owner_team = None

    class HandoverSent(Event):
        handover_id: str
        from_team: str
        to_team: str
        to_person: str | None
        document: dict[str, Any]
        TYPE = "handover_sent"
        PERSONAL = ("document",)

        def fold(self, s: CustomerState) -> None:
            s.handovers[self.handover_id] = Handover(
                self.handover_id, self.from_team, self.to_team, self.to_person, self.occurred_at
            )

    class HandoverAccepted(Event):
        handover_id: str
        TYPE = "handover_accepted"

        def fold(self, s: CustomerState) -> None:
            h = s.handovers.get(self.handover_id)  # None when the sending event was voided
            if h is not None:
                h.status, h.decided_at = "accepted", self.occurred_at
            # Accepting a handover makes the accepting person the owner, for their team.
            s.owner, s.owner_team = self.actor, self.team

    class HandoverRejected(Event):
        handover_id: str
        reason: str
        TYPE = "handover_rejected"
        PERSONAL = ("reason",)

        def fold(self, s: CustomerState) -> None:
            h = s.handovers.get(self.handover_id)  # None when the sending event was voided
            if h is not None:
                h.status, h.decided_at = "rejected", self.occurred_at

    class Purchased(Event):
        plan: str
        mrr: int
        currency: str
        contract_start: date
        contract_end: date
        TYPE = "purchase"

        def money(self, m: Money) -> Money:
            return Money(True, self.mrr, self.currency, self.contract_end)

        def fold(self, s: CustomerState) -> None:
            s.plan = self.plan
            self.fold_money(s)

    class PaymentReceived(Event):
        amount: int
        currency: str
        TYPE = "payment"

        def money(self, m: Money) -> Money:
            return Money(m.paying, m.mrr, self.currency, m.contract_end)

        def fold(self, s: CustomerState) -> None:
            self.fold_money(s)
            s.total_paid += self.amount

    class Renewed(Event):
        new_contract_end: date
        new_mrr: int | None
        TYPE = "renewal"

        def money(self, m: Money) -> Money:
            mrr = m.mrr if self.new_mrr is None else self.new_mrr
            return Money(m.paying, mrr, m.currency, self.new_contract_end)

        def fold(self, s: CustomerState) -> None:
            self.fold_money(s)

    class Expanded(Event):
        mrr_delta: int
        TYPE = "expansion"

        def money(self, m: Money) -> Money:
            return Money(m.paying, m.mrr + self.mrr_delta, m.currency, m.contract_end)

        def fold(self, s: CustomerState) -> None:
            self.fold_money(s)

    class Contracted(Event):
        mrr_delta: int
        TYPE = "contraction"

        def money(self, m: Money) -> Money:
            return Money(m.paying, max(0, m.mrr - self.mrr_delta), m.currency, m.contract_end)

        def fold(self, s: CustomerState) -> None:
            self.fold_money(s)

    class Churned(Event):
        from_stage: str
        reason: str | None
        TYPE = "churned"
        PERSONAL = ("reason",)

        def money(self, m: Money) -> Money:
            return Money(False, 0, m.currency, m.contract_end)

        def fold(self, s: CustomerState) -> None:
            self.fold_money(s)
            s.stage, s.stage_since = CHURNED, self.occurred_at

    class WonBack(Event):
        mrr: int
        stage: str
        TYPE = "won_back"

        def money(self, m: Money) -> Money:
            return Money(True, self.mrr, m.currency, m.contract_end)

        def fold(self, s: CustomerState) -> None:
            self.fold_money(s)
            s.stage, s.stage_since = self.stage, self.occurred_at

    class NpsAnswered(Event):
        score: int
        comment: str | None
        TYPE = "nps_answer"
        PERSONAL = ("comment",)

        def fold(self, s: CustomerState) -> None:
            s.last_nps, s.last_nps_at = self.score, self.occurred_at

    class CsatAnswered(Event):
        score: int
        comment: str | None
        TYPE = "csat_answer"
        PERSONAL = ("comment",)

        def fold(self, s: CustomerState) -> None:
            s.last_csat = self.score

    class CheckedIn(Event):
        notes: str | None
        TYPE = "check_in"
        PERSONAL = ("notes",)

        def fold(self, s: CustomerState) -> None:
            s.last_check_in_at = self.occurred_at

    class AdvocacyRequested(Event):
        kind: str
        TYPE = "advocacy_requested"

        def fold(self, s: CustomerState) -> None:
            s.advocacy_requested += 1

    class AdvocacyGiven(Event):
        kind: str
        referred_customer: str | None
        details: str | None
        TYPE = "advocacy_given"
        PERSONAL = ("details",)

        def fold(self, s: CustomerState) -> None:
            s.advocacy_given += 1

    class GapAssigned(Event):
        """A gap of the customer (``domain/gap_ids.py``) was given to a person to close."""

        gap_id: str
        assignee: str
        TYPE = "gap_assigned"
        ACTIVITY = False  # work on the customer, not something that happened with it

    class GapSnoozed(Event):
        """A gap was put aside until a day (it shows again from that day, 00:00 UTC)."""

        gap_id: str
        until: date
        reason: str
        TYPE = "gap_snoozed"
        PERSONAL = ("reason",)
        ACTIVITY = False

    class GapDismissed(Event):
        """A gap was closed without action: it stays closed while its situation lasts."""

        gap_id: str
        reason: str
        TYPE = "gap_dismissed"
        PERSONAL = ("reason",)
        ACTIVITY = False

    class EventVoided(Event):
        voided_version: int
        reason: str
        TYPE = "event_voided"
        PERSONAL = ("reason",)

        def apply(self, aggregate: Customer) -> None:
            aggregate.recent.append(self)
            aggregate.voided[self.voided_version] = self.originator_version
            aggregate.refold(self.voided_version)

    class Erased(Event):
        """The customer's personal data was erased (its data key deleted): who, when, why.
        It holds no personal data; the reason must not either (docs/privacy.md)."""

        reason: str
        TYPE = "customer_erased"
        ACTIVITY = False

        def fold(self, s: CustomerState) -> None:
            s.erased_at, s.name = self.occurred_at, ERASED

    # ------------------------------------------------------------------ state

    def __init__(self) -> None:
        self.state = CustomerState()
        self.voided: dict[int, int] = {}  # voided version -> version of the voiding event
        self.origin = Origin()
        #: the events applied to this object since it was loaded (all of them for a
        #: customer registered here), in version order
        self.recent: list[Customer.Event] = []

    @classmethod
    def replay(cls, base: Customer | None, events: Sequence[Customer.Event]) -> Customer | None:
        """The customer from ``base`` (a snapshot's customer, or None) and the events after
        it, in version order; None when one of them voids an event folded into ``base``
        (the caller then replays the whole history).

        The voids are read first, so each event is folded once, or skipped if voided.
        """
        voids = {e.voided_version: e.originator_version
                 for e in events if isinstance(e, cls.EventVoided)}
        if base is None:
            first = events[0]
            agg = object.__new__(cls)
            agg.__base_init__(first.originator_id, first.originator_version, first.timestamp)
            cls.__init__(agg)
        elif voids and min(voids) <= base.version:
            return None
        else:
            agg = base
        agg.voided.update(voids)
        s, voided = agg.state, agg.voided
        for e in events:
            if e.originator_version not in voided and e.__class__ is not cls.EventVoided:
                e.fold_all(s)
        if events:
            agg._version = events[-1].originator_version
            agg._modified_on = events[-1].timestamp
        agg.origin = Origin(agg._version, len(events),
                            snapshot=0 if base is None else base.origin.snapshot)
        return agg

    def refold(self, voided_version: int = 0) -> None:
        """Recompute the state from the customer's events, skipping voided ones: its stored
        events up to the version it was loaded at, then those applied since. When the
        object keeps its base state (:meth:`rebase`) and the event just voided
        (``voided_version``) is newer than it, from that state instead of the stored events."""
        o = self.origin
        if o.base is not None and voided_version > o.version:
            state = o.base.copy()
        else:
            state = self._stored_state()
            if o.base is not None:  # it held the voided event
                o.base = state.copy()
        self.state = self._folded(state, self.recent)

    def _stored_state(self) -> CustomerState:
        """The state folded from the stored events up to the version it was loaded at."""
        o = self.origin
        if o.version and o.stored is None:
            raise RuntimeError("a loaded customer must know how to read its stored events")
        return self._folded(CustomerState(), o.stored(o.version)
                            if o.stored is not None and o.version else ())

    def _folded(self, s: CustomerState, events: Iterable[Customer.Event]) -> CustomerState:
        """``s`` with ``events`` folded in, but the voided ones and the voids."""
        voided = self.voided
        for ev in events:
            if ev.originator_version not in voided and not isinstance(ev, Customer.EventVoided):
                ev.fold_all(s)
        return s

    def rebase(self, keep: int, upto: int,
               stored: Callable[[int], Iterable[Customer.Event]]) -> None:
        """Fold the events applied since loading into the base state and drop them, but the
        last ``keep`` and those after version ``upto``: the object then holds its state,
        the base and at most ``keep`` events (plus those after ``upto``), however long its
        history (a bulk import keeps its customers this way; ``writing/import_check.py``).
        ``stored`` reads its events up to a version from then on (a void of an event folded
        into the base needs them)."""
        o = self.origin
        cut = min(self.version - keep, upto)
        if cut <= o.version:
            return
        base = o.base
        if base is None:  # the state it was loaded at, kept from now on
            base = self._stored_state()
        n = cut - o.version  # ``recent`` holds versions o.version + 1, ... in order
        self._folded(base, self.recent[:n])
        del self.recent[:n]
        self.origin = replace(o, version=cut, stored=stored, base=base)

    @property
    def unsnapshotted(self) -> int:
        """The events a load of this customer would fold after its latest snapshot."""
        return self.version - self.origin.snapshot

    @property
    def external_id(self) -> str:
        return self.state.external_id

    # --------------------------------------------------------------- commands

    @classmethod
    def register(
        cls, *, customer: str, stage: str, meta: dict[str, Any], **fields: Any
    ) -> Customer:
        return cls._create(
            cls.Registered, id=customer_id(customer), customer=customer, stage=stage,
            **meta, **fields,
        )

    def record(
        self, event_class: type[Customer.Event], meta: dict[str, Any], **fields: Any
    ) -> None:
        """Trigger one event (after the command checked its rules).

        ``meta`` holds the base event fields (``occurred_at``, ``actor``, ``team``,
        ``correlation_id``, ``causation_id``); in that order, with ``fields`` in the event
        class's order, the state needs no reordering (``domain/trigger.py``). Nothing is
        recorded on an erased customer.
        """
        if self.state.erased_at is not None:
            raise InvariantViolation("customer", self.state.external_id, self.erased_reason())
        emit(self, event_class, {
            "originator_id": self._id, "originator_version": self._version + 1,
            "timestamp": now(), "customer": self.state.external_id, **meta, **fields,
        })

    def erased_reason(self) -> str:
        """Why nothing more can be recorded on this (erased) customer."""
        erased_at = self.state.erased_at
        assert erased_at is not None
        return (f"was erased on {erased_at.date().isoformat()}: nothing more can be "
                "recorded on it (register the person again under a new external id)")

    def erase(self, reason: str, meta: dict[str, Any]) -> None:
        """Record the erasure (the store deletes the customer's data key with it)."""
        self.record(self.Erased, meta, reason=reason)

    def collect_events(self) -> list[Any]:  # type: ignore[override]
        """The pending events (all at once: the library pops them one by one)."""
        return take_pending(self)

    def _refuse(self, field: str, value: Any, reason: str) -> InvariantViolation:
        return InvariantViolation(field, value, f"customer {self.external_id!r}: {reason}")

    def check_currency(self, currency: str) -> None:
        s = self.state
        if s.currency is not None and currency != s.currency:
            raise self._refuse("currency", currency, f"customer pays in {s.currency}")

    def check_paying(self, field: str, value: Any) -> None:
        if not self.state.paying:
            why = "is churned" if self.state.stage == CHURNED else "has no purchase yet"
            raise self._refuse(field, value, f"not a paying customer ({why})")

    def change_stage(self, model: StageModel, to_stage: str, reason: str | None,
                     meta: dict[str, Any]) -> None:
        current = self.state.stage
        if not model.has_stage(to_stage) or to_stage == CHURNED:
            known = ", ".join(model.names)
            raise self._refuse(
                "to_stage", to_stage,
                f"not a stage of model {model.name!r} ({known}; use churned/won_back "
                f"for {CHURNED!r})",
            )
        if to_stage == current:
            raise self._refuse("to_stage", to_stage, "customer is already in that stage")
        allowed = model.allowed_targets(current)
        if to_stage not in allowed:
            raise TransitionNotAllowed(self.external_id, current, to_stage, allowed)
        self.record(
            self.StageChanged, meta, from_stage=current, to_stage=to_stage, reason=reason,
            regression=model.is_regression(current, to_stage),
        )

    def move_to_model_stage(self, model: StageModel, to_stage: str, reason: str,
                            meta: dict[str, Any]) -> None:
        """Move a customer whose stage ``model`` (the store's new stage model) lacks to
        ``to_stage``: a change of the model, not a step of the customer's lifecycle, so no
        transition rule applies and it is no regression."""
        if not model.has_stage(to_stage) or to_stage == CHURNED:
            raise self._refuse("to_stage", to_stage, f"not a stage of model {model.name!r} "
                               f"({', '.join(model.names)})")
        self.record(self.StageChanged, meta, from_stage=self.state.stage, to_stage=to_stage,
                    reason=reason, regression=False)

    def assign_owner(self, owner: str, meta: dict[str, Any]) -> None:
        self.record(self.OwnerAssigned, meta, owner=owner)

    def release_owner(self, reason: str | None, meta: dict[str, Any]) -> None:
        if self.state.owner is None:
            raise self._refuse("owner", None, "customer has no owner to release")
        self.record(self.OwnerReleased, meta, reason=reason)

    def send_handover(self, meta: dict[str, Any], handover_id: str, **fields: Any) -> None:
        if handover_id in self.state.handovers:
            raise self._refuse("handover_id", handover_id, "a handover with this id was sent")
        self.record(self.HandoverSent, meta, handover_id=handover_id, **fields)

    def _pending_handover(self, handover_id: str) -> Handover:
        h = self.state.handovers.get(handover_id)
        if h is None:
            raise self._refuse("handover_id", handover_id, "no such handover was sent")
        if h.status != "pending":
            raise self._refuse("handover_id", handover_id, f"handover is already {h.status}")
        return h

    def accept_handover(self, handover_id: str, meta: dict[str, Any]) -> None:
        self._pending_handover(handover_id)
        self.record(self.HandoverAccepted, meta, handover_id=handover_id)

    def reject_handover(self, handover_id: str, reason: str, meta: dict[str, Any]) -> None:
        self._pending_handover(handover_id)
        self.record(self.HandoverRejected, meta, handover_id=handover_id, reason=reason)

    def purchase(self, meta: dict[str, Any], **fields: Any) -> None:
        if self.state.stage == CHURNED:
            raise self._refuse("type", "purchase", "customer is churned: record won_back")
        self.check_currency(fields["currency"])
        self.record(self.Purchased, meta, **fields)

    def pay(self, amount: int, currency: str, meta: dict[str, Any]) -> None:
        self.check_currency(currency)
        self.record(self.PaymentReceived, meta, amount=amount, currency=currency)

    def renew(self, new_contract_end: date, new_mrr: int | None, meta: dict[str, Any]) -> None:
        self.check_paying("new_contract_end", new_contract_end)
        self.record(self.Renewed, meta, new_contract_end=new_contract_end, new_mrr=new_mrr)

    def expand(self, mrr_delta: int, meta: dict[str, Any]) -> None:
        self.check_paying("mrr_delta", mrr_delta)
        self.record(self.Expanded, meta, mrr_delta=mrr_delta)

    def contract(self, mrr_delta: int, meta: dict[str, Any]) -> None:
        self.check_paying("mrr_delta", mrr_delta)
        if mrr_delta > self.state.mrr:
            raise self._refuse("mrr_delta", mrr_delta, f"larger than the MRR {self.state.mrr}")
        self.record(self.Contracted, meta, mrr_delta=mrr_delta)

    def churn(self, reason: str | None, meta: dict[str, Any]) -> None:
        self.check_paying("type", "churned")
        self.record(self.Churned, meta, from_stage=self.state.stage, reason=reason)

    def win_back(self, model: StageModel, mrr: int, meta: dict[str, Any]) -> None:
        if self.state.stage != CHURNED:
            raise self._refuse("type", "won_back", "customer is not churned")
        self.record(self.WonBack, meta, mrr=mrr, stage=model.reentry_stage)

    def _check_gap(self, gap: GapRef) -> None:
        """Refuse a gap that cannot be this customer's: another customer's, or a stale
        handover that was never sent. (Whether it is a gap at some time is the read side's
        question: its rules and thresholds live there.)"""
        if gap.customer != self.external_id:
            raise self._refuse("gap_id", gap.id, f"is a gap of customer {gap.customer!r}")
        if gap.kind == "handover_stale" and gap.subject[0] not in self.state.handovers:
            raise self._refuse("gap_id", gap.id, f"no handover {gap.subject[0]!r} was sent")

    def assign_gap(self, gap: GapRef, assignee: str, meta: dict[str, Any]) -> None:
        self._check_gap(gap)
        self.record(self.GapAssigned, meta, gap_id=gap.id, assignee=assignee)

    def snooze_gap(self, gap: GapRef, until: date, reason: str, meta: dict[str, Any]) -> None:
        self._check_gap(gap)
        if until <= meta["occurred_at"].date():
            raise self._refuse("until", until.isoformat(), "must be after the day the snooze "
                               f"is recorded ({meta['occurred_at'].date().isoformat()})")
        self.record(self.GapSnoozed, meta, gap_id=gap.id, until=until, reason=reason)

    def dismiss_gap(self, gap: GapRef, reason: str, meta: dict[str, Any]) -> None:
        self._check_gap(gap)
        self.record(self.GapDismissed, meta, gap_id=gap.id, reason=reason)

    def void(self, version: int, reason: str, meta: dict[str, Any]) -> None:
        if not 1 <= version <= self.version:
            raise self._refuse("voided_version", version, f"no such event (1..{self.version})")
        if version == 1:
            raise self._refuse("voided_version", version, "the registration cannot be voided")
        if version in self.voided.values():
            raise self._refuse("voided_version", version, "a voiding event cannot be voided")
        if version in self.voided:
            raise self._refuse(
                "voided_version", version, f"already voided by version {self.voided[version]}"
            )
        self.record(self.EventVoided, meta, voided_version=version, reason=reason)


#: snake_case type name -> event class, for every customer event.
CUSTOMER_EVENTS: dict[str, type[Customer.Event]] = {
    cls.TYPE: cls
    for cls in vars(Customer).values()
    if isinstance(cls, type) and issubclass(cls, Customer.Event) and cls.TYPE
}
