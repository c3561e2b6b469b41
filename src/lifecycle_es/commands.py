"""Typed, validated commands: one pydantic model per thing that can happen.

The same models serve the library (``engine.purchase(...)``) and the JSON Lines import
(``{"type": "purchase", ...}``). Each knows which aggregate it targets and how to apply itself;
the engine only loads, applies and saves. See ``docs/commands.md`` for every field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from lifecycle_es.domain.campaign import Campaign
from lifecycle_es.domain.customer import ADVOCACY_KINDS, Customer
from lifecycle_es.domain.gap_ids import GapRef, parse_gap_id
from lifecycle_es.domain.ids import campaign_id, customer_id, normalise_id
from lifecycle_es.domain.stage_model import StageModel
from lifecycle_es.domain.token import NAME as TOKEN_NAME
from lifecycle_es.domain.token import SCOPES, ApiToken, token_id
from lifecycle_es.domain.user import ROLES, User, user_id
from lifecycle_es.errors import (
    FieldProblem,
    InvalidInput,
    InvariantViolation,
    UnknownCampaign,
    UnknownCustomer,
)
from lifecycle_es.limits import (
    DOCUMENT_BYTES,
    DOCUMENT_ITEMS,
    FREE_TEXT_CHARS,
    INT64_MAX,
    MAX_MONEY,
    TEXT_CHARS,
    free_text,
    plain_text,
    supported_date,
    utc_time,
)

if TYPE_CHECKING:
    from eventsourcing.domain import Aggregate

# The limits of every field: docs/commands.md, "Limits" (values in lifecycle_es.limits).
Text = Annotated[str, Field(min_length=1, max_length=TEXT_CHARS), AfterValidator(plain_text)]
FreeText = Annotated[str, Field(max_length=FREE_TEXT_CHARS), AfterValidator(free_text)]
#: an external id: stripped, NFC, no control or invisible character (``normalise_id``)
Id = Annotated[str, AfterValidator(normalise_id)]
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _time_given(value: Any) -> Any:
    """A time is an ISO 8601 string (or, from Python, a datetime): never a number, which
    pydantic would read as Unix seconds (``-1``: 1969-12-31T23:59:59Z)."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError("expected an ISO 8601 time as a string with its timezone, e.g. "
                     "\"2024-01-02T09:00:00Z\" (not a number)")


def _day_given(value: Any) -> Any:
    """A date is ``YYYY-MM-DD`` (or, from Python, a date): no time, no number."""
    if (isinstance(value, date) and not isinstance(value, datetime)) or (
            isinstance(value, str) and _DAY.fullmatch(value)):
        return value
    raise ValueError("expected a date as a string YYYY-MM-DD, e.g. \"2024-01-02\" (no "
                     "time, not a number)")


#: an aware datetime, normalised to UTC, inside the supported range; given as text
At = Annotated[AwareDatetime, BeforeValidator(_time_given), AfterValidator(utc_time)]
#: a date inside the supported range, given as YYYY-MM-DD
Day = Annotated[date, BeforeValidator(_day_given), AfterValidator(supported_date)]
Minor = Annotated[StrictInt, Field(ge=0, le=MAX_MONEY,
                                   description="amount in minor units (cents)")]
Delta = Annotated[StrictInt, Field(gt=0, le=MAX_MONEY, description="MRR change in minor units")]
Items = Annotated[list[Text], Field(max_length=DOCUMENT_ITEMS)]
_CURRENCY = re.compile(r"[A-Z]{3}")
R = TypeVar("R", bound=BaseModel)


def _currency(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise ValueError("expected a 3-letter ISO 4217 code such as EUR")
    return value


Currency = Annotated[str, AfterValidator(_currency), Field(description="ISO 4217 code")]
AdvocacyKind = Literal["testimonial", "case_study", "review", "referral"]
assert set(ADVOCACY_KINDS) == set(AdvocacyKind.__args__)  # type: ignore[attr-defined]


class HandoverDocument(BaseModel):
    """The standardized handover document (seed 000): what the receiving team must know."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    goals: Items = Field(default_factory=list)
    features_of_interest: Items = Field(default_factory=list)
    features_known: Items = Field(default_factory=list)
    risks: Items = Field(default_factory=list)
    notes: FreeText | None = None

    @model_validator(mode="after")
    def _size(self) -> HandoverDocument:
        size = len(orjson.dumps(self.__dict__))
        if size > DOCUMENT_BYTES:
            raise ValueError(f"the document is {size} bytes as stored (UTF-8 JSON); at most "
                             f"{DOCUMENT_BYTES} bytes")
        return self


class Command(BaseModel):
    """Fields every command carries: business time, who, for which team, and tracing ids."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    type: str
    at: At = Field(description="when it happened (business time, with timezone; kept in UTC)")
    actor: Text = Field(description="who did it")
    team: Text = Field(description="the team the actor acted for")
    correlation_id: Id | None = Field(None, description="your id tying commands to one "
                                                         "business operation")
    causation_id: Id | None = Field(None, description="your id of what caused it")

    #: "customer" or "campaign": which aggregate the command targets.
    target: ClassVar[str] = "customer"
    #: True when the command creates its aggregate.
    creates: ClassVar[bool] = False

    @property
    def key(self) -> str:
        """External id of the target aggregate."""
        raise NotImplementedError

    #: fields naming a team, checked against the stage model's teams
    team_fields: ClassVar[tuple[str, ...]] = ("team",)

    def aggregate_id(self) -> UUID:
        """Id of the target aggregate (UUID5 of :attr:`key`)."""
        return campaign_id(self.key) if self.target == "campaign" else customer_id(self.key)

    def check_teams(self, teams: Sequence[str]) -> None:
        """Raise :class:`InvalidInput` naming every team field whose team is not in ``teams``
        (the stage model's)."""
        bad = [FieldProblem(f, v, f"unknown team (known: {', '.join(teams)})")
               for f in self.team_fields if (v := getattr(self, f)) not in teams]
        if bad:
            raise InvalidInput(bad, self.type)

    def apply_to(self, existing: Aggregate | None, model: StageModel) -> Aggregate:
        """Apply the command to its aggregate ``existing`` (None: not recorded yet), or
        create the aggregate; return it with the new events pending.

        Raises :class:`InvariantViolation` (also when a creating command finds its aggregate
        recorded), :class:`UnknownCustomer` or :class:`UnknownCampaign`.
        """
        what = self.target
        if self.creates:
            if isinstance(existing, Customer) and existing.state.erased_at is not None:
                raise InvariantViolation(what, self.key, existing.erased_reason())
            if existing is not None:
                raise InvariantViolation(what, self.key, f"{what} is already registered")
            return self.create(model)  # type: ignore[attr-defined, no-any-return]
        if existing is None:
            raise UnknownCampaign(self.key) if what == "campaign" else UnknownCustomer(self.key)
        self.apply(existing, model)  # type: ignore[attr-defined]
        return existing

    def meta(self) -> dict[str, Any]:
        """The base fields of the command's event, in the events' field order."""
        d = self.__dict__  # the validated fields (read directly: this runs for every event)
        return {
            "occurred_at": d["at"],
            "actor": d["actor"],
            "team": d["team"],
            "correlation_id": d["correlation_id"],
            "causation_id": d["causation_id"],
        }


class CustomerCommand(Command):
    customer: Id = Field(description="the caller's external id of the customer")

    @property
    def key(self) -> str:
        return self.customer

    def apply(self, c: Customer, model: StageModel) -> None:
        """Check the rules on ``c`` and trigger the event (raises InvariantViolation)."""
        raise NotImplementedError

    def fields(self, *names: str) -> dict[str, Any]:
        return {n: getattr(self, n) for n in names}


class RegisterCustomer(CustomerCommand):
    type: Literal["customer_registered"] = "customer_registered"
    name: Text = Field(description="the customer's name (personal)")
    segment: Text = Field(description="segment, e.g. smb, mid, enterprise")
    source: Text = Field(description="source channel, e.g. web, referral, event")
    stage: Text | None = Field(None, description="initial stage (default: the model's first)")
    creates: ClassVar[bool] = True

    def create(self, model: StageModel) -> Customer:
        stage = self.stage or model.first_stage
        if stage not in model.names:  # churned is reached by a churned event only
            raise InvariantViolation(
                "stage", stage, f"not a stage of model {model.name!r} ({', '.join(model.names)})"
            )
        return Customer.register(
            customer=self.customer, stage=stage, meta=self.meta(),
            **self.fields("name", "segment", "source"),
        )


class RecordTouchpoint(CustomerCommand):
    type: Literal["touchpoint"] = "touchpoint"
    channel: Text = Field(description="channel, e.g. email, call, web, event")
    campaign_id: Id | None = Field(None, description="the campaign this touch belongs to")
    notes: FreeText | None = Field(None, description="notes (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.record(c.Touchpoint, self.meta(), **self.fields("channel", "campaign_id", "notes"))


class ChangeStage(CustomerCommand):
    type: Literal["stage_changed"] = "stage_changed"
    to_stage: Text = Field(description="the target stage")
    reason: FreeText | None = Field(None, description="why (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.change_stage(model, self.to_stage, self.reason, self.meta())


class AssignOwner(CustomerCommand):
    type: Literal["owner_assigned"] = "owner_assigned"
    owner: Text = Field(description="the person who now owns the customer")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.assign_owner(self.owner, self.meta())


class ReleaseOwner(CustomerCommand):
    type: Literal["owner_released"] = "owner_released"
    reason: FreeText | None = Field(None, description="why (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.release_owner(self.reason, self.meta())


class SendHandover(CustomerCommand):
    type: Literal["handover_sent"] = "handover_sent"
    handover_id: Id = Field(description="your id of this handover, unique per customer")
    from_team: Text = Field(description="the team handing over (a stage model's team)")
    to_team: Text = Field(description="the team taking over (a stage model's team)")
    to_person: Text | None = Field(None, description="the person expected to accept")
    document: HandoverDocument = Field(
        default_factory=HandoverDocument,
        description="the handover document (personal): goals, features_of_interest, "
                    "features_known, risks (lists of texts) and notes")

    team_fields: ClassVar[tuple[str, ...]] = ("team", "from_team", "to_team")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.send_handover(
            self.meta(), self.handover_id, from_team=self.from_team, to_team=self.to_team,
            to_person=self.to_person, document=self.document.model_dump(),
        )


class AcceptHandover(CustomerCommand):
    type: Literal["handover_accepted"] = "handover_accepted"
    handover_id: Id = Field(description="a handover sent to this customer")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.accept_handover(self.handover_id, self.meta())


class RejectHandover(CustomerCommand):
    type: Literal["handover_rejected"] = "handover_rejected"
    handover_id: Id = Field(description="a pending handover sent to this customer")
    reason: FreeText = Field(description="why (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.reject_handover(self.handover_id, self.reason, self.meta())


class Purchase(CustomerCommand):
    type: Literal["purchase"] = "purchase"
    plan: Text = Field(description="the plan bought")
    mrr: Minor = Field(description="monthly recurring revenue in minor units (cents)")
    currency: Currency = Field(description="ISO 4217 code, e.g. EUR")
    contract_start: Day = Field(description="first day of the contract")
    contract_end: Day = Field(description="last day of the contract, not before its start")

    @model_validator(mode="after")
    def _contract_order(self) -> Purchase:
        if self.contract_end < self.contract_start:
            raise ValueError(
                f"contract_end={self.contract_end.isoformat()!r} is before contract_start="
                f"{self.contract_start.isoformat()!r}"
            )
        return self

    def apply(self, c: Customer, model: StageModel) -> None:
        c.purchase(
            self.meta(),
            **self.fields("plan", "mrr", "currency", "contract_start", "contract_end"),
        )


class Payment(CustomerCommand):
    type: Literal["payment"] = "payment"
    amount: Minor = Field(description="amount paid in minor units (cents)")
    currency: Currency = Field(description="ISO 4217 code, the customer's once fixed")

    def apply(self, c: Customer, model: StageModel) -> None:
        total = c.state.total_paid + self.amount
        if total > INT64_MAX:  # the sum of a customer's payments stays a 64-bit integer
            raise InvariantViolation("amount", self.amount, f"customer {self.customer!r}: "
                                     f"the payments would total {total}, above {INT64_MAX}")
        c.pay(self.amount, self.currency, self.meta())


class Renewal(CustomerCommand):
    type: Literal["renewal"] = "renewal"
    new_contract_end: Day = Field(description="the contract's new last day")
    new_mrr: Minor | None = Field(None, description="the MRR from now on (minor units; "
                                  "unchanged when omitted)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.renew(self.new_contract_end, self.new_mrr, self.meta())


class Expansion(CustomerCommand):
    type: Literal["expansion"] = "expansion"
    mrr_delta: Delta = Field(description="how much the MRR goes up (minor units)")

    def apply(self, c: Customer, model: StageModel) -> None:
        mrr = c.state.mrr + self.mrr_delta
        if c.state.paying and mrr > MAX_MONEY:
            raise InvariantViolation("mrr_delta", self.mrr_delta, f"customer {self.customer!r}: "
                                     f"the MRR would be {mrr}, above {MAX_MONEY}")
        c.expand(self.mrr_delta, self.meta())


class Contraction(CustomerCommand):
    type: Literal["contraction"] = "contraction"
    mrr_delta: Delta = Field(description="how much the MRR goes down (minor units)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.contract(self.mrr_delta, self.meta())


class Churn(CustomerCommand):
    type: Literal["churned"] = "churned"
    reason: FreeText | None = Field(None, description="why (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.churn(self.reason, self.meta())


class WinBack(CustomerCommand):
    type: Literal["won_back"] = "won_back"
    mrr: Minor = Field(description="the MRR from now on (minor units)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.win_back(model, self.mrr, self.meta())


class NpsAnswer(CustomerCommand):
    type: Literal["nps_answer"] = "nps_answer"
    score: Annotated[StrictInt, Field(ge=0, le=10)] = Field(
        description="0-10: 9-10 promoter, 0-6 detractor")
    comment: FreeText | None = Field(None, description="the customer's comment (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.record(c.NpsAnswered, self.meta(), score=self.score, comment=self.comment)


class CsatAnswer(CustomerCommand):
    type: Literal["csat_answer"] = "csat_answer"
    score: Annotated[StrictInt, Field(ge=1, le=5)] = Field(
        description="1-5: 4-5 satisfied")
    comment: FreeText | None = Field(None, description="the customer's comment (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.record(c.CsatAnswered, self.meta(), score=self.score, comment=self.comment)


class CheckIn(CustomerCommand):
    type: Literal["check_in"] = "check_in"
    notes: FreeText | None = Field(None, description="notes (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.record(c.CheckedIn, self.meta(), notes=self.notes)


class RequestAdvocacy(CustomerCommand):
    type: Literal["advocacy_requested"] = "advocacy_requested"
    kind: AdvocacyKind = Field(description="what is asked for")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.record(c.AdvocacyRequested, self.meta(), kind=self.kind)


class GiveAdvocacy(CustomerCommand):
    type: Literal["advocacy_given"] = "advocacy_given"
    kind: AdvocacyKind = Field(description="what was given")
    referred_customer: Id | None = Field(
        None, description="the referred customer's id (for kind referral only)")
    details: FreeText | None = Field(None, description="details (personal)")

    @model_validator(mode="after")
    def _referral_names_customer(self) -> GiveAdvocacy:
        if (self.kind == "referral") != (self.referred_customer is not None):
            raise ValueError(
                "referred_customer is required for kind='referral' and only for it "
                f"(kind={self.kind!r}, referred_customer={self.referred_customer!r})"
            )
        return self

    def apply(self, c: Customer, model: StageModel) -> None:
        c.record(c.AdvocacyGiven, self.meta(), **self.fields("kind", "referred_customer",
                                                              "details"))


#: a gap id (``domain/gap_ids.py``), written the one way it is written
GapId = Annotated[str, AfterValidator(lambda v: parse_gap_id(v).id),
                  Field(description="KIND:CUSTOMER:SUBJECT, as `gaps --json` gives it")]
#: a reason that must be given (a free text, not empty)
Reason = Annotated[str, Field(min_length=1, max_length=FREE_TEXT_CHARS),
                   AfterValidator(free_text)]


class GapCommand(CustomerCommand):
    """Work on one gap of the customer: its id names the customer too (they must agree)."""

    gap_id: GapId = Field(description="the gap's id, KIND:CUSTOMER:SUBJECT (gaps --json)")

    @property
    def gap(self) -> GapRef:
        return parse_gap_id(self.gap_id)


class AssignGap(GapCommand):
    type: Literal["gap_assigned"] = "gap_assigned"
    assignee: Text = Field(description="the person who is to close the gap")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.assign_gap(self.gap, self.assignee, self.meta())


class SnoozeGap(GapCommand):
    type: Literal["gap_snoozed"] = "gap_snoozed"
    until: Day = Field(description="the gap shows again from this day (00:00 UTC)")
    reason: Reason = Field(description="why it waits (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.snooze_gap(self.gap, self.until, self.reason, self.meta())


class DismissGap(GapCommand):
    type: Literal["gap_dismissed"] = "gap_dismissed"
    reason: Reason = Field(description="why it is not a real gap (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.dismiss_gap(self.gap, self.reason, self.meta())


class VoidEvent(CustomerCommand):
    type: Literal["event_voided"] = "event_voided"
    voided_version: Annotated[StrictInt, Field(ge=1, le=INT64_MAX)] = Field(
        description="the version of the customer's event to void")
    reason: Text = Field(description="why (personal)")

    def apply(self, c: Customer, model: StageModel) -> None:
        c.void(self.voided_version, self.reason, self.meta())


class CampaignCommand(Command):
    campaign: Id = Field(description="the campaign's id in the shared registry")
    target: ClassVar[str] = "campaign"

    @property
    def key(self) -> str:
        return self.campaign

    def apply(self, c: Campaign, model: StageModel) -> None:
        raise NotImplementedError


class AnnounceCampaign(CampaignCommand):
    type: Literal["campaign_announced"] = "campaign_announced"
    name: Text = Field(description="the campaign's name")
    offer: FreeText = Field(description="what customers are promised")
    discount_percent: Annotated[StrictInt, Field(ge=0, le=100)] = Field(
        0, description="discount, 0-100")
    starts: Day = Field(description="first day")
    ends: Day = Field(description="last day (inclusive)")
    segment: Text | None = Field(None, description="target segment")
    owning_team: Text = Field(description="the team running it (a stage model's team)")
    creates: ClassVar[bool] = True

    team_fields: ClassVar[tuple[str, ...]] = ("team", "owning_team")

    def create(self, model: StageModel) -> Campaign:
        return Campaign.announce(
            campaign=self.campaign, meta=self.meta(),
            **{k: getattr(self, k) for k in ("name", "offer", "discount_percent", "starts",
                                             "ends", "segment", "owning_team")},
        )


class AmendCampaign(CampaignCommand):
    type: Literal["campaign_amended"] = "campaign_amended"
    name: Text | None = Field(None, description="new name")
    offer: FreeText | None = Field(None, description="new offer")
    discount_percent: Annotated[StrictInt, Field(ge=0, le=100)] | None = Field(
        None, description="new discount, 0-100")
    starts: Day | None = Field(None, description="new first day")
    ends: Day | None = Field(None, description="new last day (inclusive)")
    segment: Text | None = Field(None, description="new target segment")

    def apply(self, c: Campaign, model: StageModel) -> None:
        changes = self.model_dump(
            include={"name", "offer", "discount_percent", "starts", "ends", "segment"},
            exclude_none=True,
        )
        if not changes:
            raise InvariantViolation("campaign", self.campaign, "amendment changes nothing")
        c.amend(changes, self.meta())


class EndCampaign(CampaignCommand):
    type: Literal["campaign_ended"] = "campaign_ended"
    reason: FreeText | None = Field(None, description="why")

    def apply(self, c: Campaign, model: StageModel) -> None:
        c.end(self.reason, self.meta())


Role = Literal["member", "lead", "compliance", "admin"]
assert set(ROLES) == set(Role.__args__)  # type: ignore[attr-defined]
#: the team user changes made from the CLI are recorded for (an operator, not a stage team)
ADMIN_TEAM = "admin"


class UserCommand(Command):
    """A change to a person of the console (``lifecycle-es users``); not a command of the
    JSON Lines import. Its ``team`` is the acting administrator's."""

    user: Id = Field(description="the user name people sign in with")
    target: ClassVar[str] = "user"
    team_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def key(self) -> str:
        return self.user

    def aggregate_id(self) -> UUID:
        return user_id(self.user)

    def apply_to(self, existing: Aggregate | None, model: StageModel) -> Aggregate:
        if self.creates:
            if existing is not None:
                raise InvariantViolation("user", self.user, "user already exists")
            return self.create(model)  # type: ignore[attr-defined, no-any-return]
        if not isinstance(existing, User):
            raise InvariantViolation("user", self.user, "no such user")
        self.apply(existing, model)
        return existing

    def apply(self, u: User, model: StageModel) -> None:
        raise NotImplementedError


class AddUser(UserCommand):
    type: Literal["user_added"] = "user_added"
    user_team: Text = Field(description="the team the user acts for (a stage model's team)")
    role: Role
    password_hash: str = Field(repr=False, min_length=1, max_length=TEXT_CHARS,
                               description="argon2 hash (domain.user.hash_password)")
    creates: ClassVar[bool] = True
    team_fields: ClassVar[tuple[str, ...]] = ("user_team",)

    def create(self, model: StageModel) -> User:
        return User.add(user=self.user, meta=self.meta(), user_team=self.user_team,
                        role=self.role, password_hash=self.password_hash)


class ChangeUserRole(UserCommand):
    type: Literal["user_role_changed"] = "user_role_changed"
    role: Role

    def apply(self, u: User, model: StageModel) -> None:
        u.change_role(self.role, self.meta())


class ChangeUserPassword(UserCommand):
    type: Literal["user_password_changed"] = "user_password_changed"
    password_hash: str = Field(repr=False, min_length=1, max_length=TEXT_CHARS)

    def apply(self, u: User, model: StageModel) -> None:
        u.change_password(self.password_hash, self.meta())


class DisableUser(UserCommand):
    type: Literal["user_disabled"] = "user_disabled"
    reason: FreeText | None = None

    def apply(self, u: User, model: StageModel) -> None:
        u.disable(self.reason, self.meta())


Scope = Literal["read", "write"]
assert set(SCOPES) == set(Scope.__args__)  # type: ignore[attr-defined]


def _token_name(value: str) -> str:
    if not TOKEN_NAME.fullmatch(value):
        raise ValueError("expected 1 to 64 letters, digits, '-' or '.', starting with a "
                         "letter or digit (the name is part of the token)")
    return value


class TokenCommand(Command):
    """A change to an API token (``lifecycle-es tokens``); not a command of the JSON Lines
    import or of the API. Its ``team`` is the acting administrator's."""

    token: Annotated[str, AfterValidator(_token_name)] = Field(
        description="the integration's name (part of the token)")
    target: ClassVar[str] = "token"
    team_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def key(self) -> str:
        return self.token

    def aggregate_id(self) -> UUID:
        return token_id(self.token)

    def apply_to(self, existing: Aggregate | None, model: StageModel) -> Aggregate:
        if self.creates:
            if existing is not None:
                raise InvariantViolation("token", self.token, "a token of that name exists "
                                         "(revoked or not: choose another name)")
            return self.create(model)  # type: ignore[attr-defined, no-any-return]
        if not isinstance(existing, ApiToken):
            raise InvariantViolation("token", self.token, "no such token")
        self.apply(existing, model)
        return existing

    def apply(self, t: ApiToken, model: StageModel) -> None:
        raise NotImplementedError


class AddToken(TokenCommand):
    type: Literal["token_added"] = "token_added"
    scope: Scope
    act_for_others: bool = Field(False, description="may record commands naming another "
                                                    "actor than the token's name")
    token_hash: str = Field(repr=False, pattern=r"^[0-9a-f]{64}$",
                            description="SHA-256 of the token (domain.token.token_hash)")
    creates: ClassVar[bool] = True

    def create(self, model: StageModel) -> ApiToken:
        return ApiToken.add(token=self.token, meta=self.meta(), scope=self.scope,
                            act_for_others=self.act_for_others, token_hash=self.token_hash)


class RevokeToken(TokenCommand):
    type: Literal["token_revoked"] = "token_revoked"
    reason: FreeText | None = None

    def apply(self, t: ApiToken, model: StageModel) -> None:
        t.revoke(self.reason, self.meta())


class Erasure(BaseModel):
    """A request to erase one customer's personal data (``engine.erase``); not a command
    of the JSON Lines import: erasure is asked for one customer at a time."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    customer: Id
    reason: Text = Field(description="why (a request reference; no personal data)")
    actor: Text = Field(description="who erased it")

    def meta(self, at: Any) -> dict[str, Any]:
        """The erasure event's base fields (recorded now, for team ``privacy``)."""
        return {"occurred_at": at, "actor": self.actor, "team": ERASURE_TEAM,
                "correlation_id": None, "causation_id": None}


#: the team an erasure is recorded for
ERASURE_TEAM = "privacy"


def build_erasure(fields: dict[str, Any]) -> Erasure:
    """Validate an erasure request (raises InvalidInput)."""
    return _request(Erasure, fields, "erasure")


class StageModelChange(BaseModel):
    """A request to change the store's stage model (``engine.set_stage_model``): who asks,
    and the stage of the new model that customers of each stage it lacks move to."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    actor: Text = Field(description="who changed the model")
    mapping: dict[Text, Text] = Field(default_factory=dict,
                                      description="old stage -> stage of the new model")


def build_model_change(fields: dict[str, Any]) -> StageModelChange:
    """Validate a stage model change request (raises InvalidInput)."""
    return _request(StageModelChange, fields, "stage_model")


def _request(cls: type[R], fields: dict[str, Any], what: str) -> R:
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(problems_of(exc), what) from None


AnyCommand = Annotated[
    RegisterCustomer | RecordTouchpoint | ChangeStage | AssignOwner | ReleaseOwner
    | SendHandover | AcceptHandover | RejectHandover | Purchase | Payment | Renewal
    | Expansion | Contraction | Churn | WinBack | NpsAnswer | CsatAnswer | CheckIn
    | RequestAdvocacy | GiveAdvocacy | VoidEvent | AnnounceCampaign | AmendCampaign
    | EndCampaign | AssignGap | SnoozeGap | DismissGap,
    Field(discriminator="type"),
]

#: snake_case type -> command class.
COMMANDS: dict[str, type[Command]] = {
    cls.model_fields["type"].default: cls
    for cls in (*CustomerCommand.__subclasses__(), *GapCommand.__subclasses__(),
                *CampaignCommand.__subclasses__())
    if cls is not GapCommand
}

#: snake_case type -> user command class (built by the library methods, never imported)
USER_COMMANDS: dict[str, type[Command]] = {
    cls.model_fields["type"].default: cls
    for cls in (*UserCommand.__subclasses__(), *TokenCommand.__subclasses__())
}

_ADAPTER: TypeAdapter[Command] = TypeAdapter(AnyCommand)


#: fields whose value an error never shows
SECRET_FIELDS = frozenset({"password_hash", "token_hash"})


def problems_of(exc: ValidationError, line: int | None = None) -> list[FieldProblem]:
    """Turn a pydantic error into field problems (field path, value, reason)."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in COMMANDS:  # the discriminator's tag
            loc = loc[1:]
        field = ".".join(loc) or "command"
        reason = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = "type"
            value = (err.get("ctx") or {}).get("tag")
            reason = "unknown command type" if value is not None else "missing command type"
        elif err["type"] == "missing":
            value = None
        elif err["type"] == "json_invalid":  # show the start of the line, not raw bytes
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            text = text.strip()
            value = text if len(text) <= 60 else text[:60] + "…"
            reason = re.sub(r" at line (\d+) column (\d+)$", lambda m: (
                f" at column {m[2]}" if m[1] == "1" else " at the end of the line"), reason)
        elif isinstance(value, dict):  # a whole-model error: the message names the fields
            value = "…"
        if field in SECRET_FIELDS:
            value = "[hidden]"
        out.append(FieldProblem(field, value, reason, line))
    return out


def parse_command(data: dict[str, Any] | str | bytes, line: int | None = None) -> Command:
    """Validate one command given as a dict or a JSON document (raises InvalidInput)."""
    if (isinstance(data, str) and data.startswith("\ufeff")) or (
            isinstance(data, bytes) and data.startswith(b"\xef\xbb\xbf")):
        raise InvalidInput([FieldProblem(
            "line", "BOM", "starts with a UTF-8 byte order mark (BOM): save the file as UTF-8 "
                           "without BOM", line)], "command")
    try:
        if isinstance(data, (str, bytes)):
            command = _ADAPTER.validate_json(data)
            if _may_repeat_a_key(data, command) and (twice := repeated_keys(data, line)):
                raise InvalidInput(twice, "command")
            return command
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = problems_of(exc, line)
        if isinstance(data, (str, bytes)):
            problems += repeated_keys(data, line)
    raise InvalidInput(problems, "command")


#: a key's closing quote followed by white space (``"at" :``): the cheap count of
#: :func:`_may_repeat_a_key` cannot tell, so such a line is looked at key by key
_LOOSE = re.compile(r'"[ \t\r\n]')
_LOOSE_BYTES = re.compile(rb'"[ \t\r\n]')


def _may_repeat_a_key(data: str | bytes, command: Command) -> bool:
    """Whether the JSON ``data`` that gave ``command`` may hold a key twice (the JSON parser
    keeps the last): a cheap test (a few percent of the parse), true whenever it does. Each
    key ends in ``":`` unless white space comes before its colon, so a line with as many
    ``":`` as keys given (of the command, and of a handover's document) and no quote
    followed by white space holds each key once."""
    given = command.__pydantic_fields_set__
    keys = len(given)
    if "document" in given:
        keys += len(command.__dict__["document"].__pydantic_fields_set__)
    if isinstance(data, str):
        return data.count('":') != keys or _LOOSE.search(data) is not None
    return data.count(b'":') != keys or _LOOSE_BYTES.search(data) is not None


def repeated_keys(data: str | bytes, line: int | None = None) -> list[FieldProblem]:
    """A problem for each key the JSON object ``data`` (or an object inside it) gives more
    than once (the JSON Lines format takes each key once; a parser would keep the last)."""
    import json

    found: list[FieldProblem] = []
    inner: dict[int, list[int]] = {}  # an object built -> its problems (named from inside)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        mine: list[int] = []
        for key, value in items:
            if key in seen:
                found.append(FieldProblem(key, value, f"the key {key!r} is given more than once "
                                          "in the line (each key once)", line))
                mine.append(len(found) - 1)
            for i in inner.pop(id(value), []) if isinstance(value, dict) else ():
                found[i] = replace(found[i], field=f"{key}.{found[i].field}")  # document.goals
                mine.append(i)
            seen[key] = value
        if mine:
            inner[id(seen)] = mine
        return seen

    try:
        json.loads(data, object_pairs_hook=pairs)
    except ValueError:  # not JSON: the parser's own problem says so
        return []
    return found


def build_command(type_: str, fields: dict[str, Any]) -> Command:
    """Validate the keyword arguments of a library call for command ``type_``."""
    cls = COMMANDS.get(type_) or USER_COMMANDS.get(type_)
    if cls is None:
        raise InvalidInput([FieldProblem("type", type_, "unknown command type")], "command")
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        raise InvalidInput(problems_of(exc), type_) from None
