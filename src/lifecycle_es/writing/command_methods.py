"""The write side's command methods: one typed method per command of ``commands.py``.

Each takes its command's fields as keyword-only parameters, typed as the command's pydantic
model accepts them (times as an aware ``datetime`` or ISO 8601 text, days as ``date`` or
text, money as integer minor units), so a type checker rejects a misspelt field or a wrong
type in the caller's code. At run time :func:`records` hands the keywords to the model as
they are, so a bad, missing or misspelt field still raises ``InvalidInput`` naming it (as
``record`` does); the methods' bodies never run. ``tests/test_command_methods.py`` keeps
methods and models equal (names, required or optional, defaults, types).

:class:`CommandMethods` is a mixin: a class that provides :meth:`~CommandMethods.record`
gets every method (the write side's application; a facade that delegates ``record`` too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from lifecycle_es.commands import AdvocacyKind, HandoverDocument, Role, Scope

F = TypeVar("F", bound=Callable[..., int])
#: the default handover document (every list empty, no notes); the model is frozen
EMPTY_DOCUMENT = HandoverDocument()
#: method name -> the command type it records
COMMAND_METHODS: dict[str, str] = {}


#: method name -> the user or token command type it records (``lifecycle-es users``,
#: ``lifecycle-es tokens``, the console)
USER_METHODS: dict[str, str] = {}


def records(type_: str, registry: dict[str, str] = COMMAND_METHODS) -> Callable[[F], F]:
    """Make the decorated method record command ``type_`` from its keywords (through
    ``record``); its typed signature stays what type checkers and ``help()`` see."""
    def decorate(method: F) -> F:
        @wraps(method)
        def call(self: CommandMethods, /, **fields: Any) -> int:
            return self.record(type_, **fields)

        registry[method.__name__] = type_
        return cast(F, call)

    return decorate


class CommandMethods:
    """One method per command, each returning the aggregate's new version (see
    docs/commands.md for every field); each raises what :meth:`record` raises."""

    def record(self, type_: str, **fields: Any) -> int:
        """Validate and execute command ``type_`` (a JSON Lines type name) from keywords."""
        raise NotImplementedError

    @records("customer_registered")
    def register(
        self, *, customer: str, name: str, segment: str, source: str, at: datetime | str,
        actor: str, team: str, stage: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Register a new customer (in ``stage``, else the model's first stage)."""
        raise NotImplementedError

    @records("touchpoint")
    def touchpoint(
        self, *, customer: str, channel: str, at: datetime | str, actor: str, team: str,
        campaign_id: str | None = None, notes: str | None = None,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Record a contact with the customer (an email, a call, an ad click)."""
        raise NotImplementedError

    @records("stage_changed")
    def change_stage(
        self, *, customer: str, to_stage: str, at: datetime | str, actor: str, team: str,
        reason: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Move the customer to another stage the stage model allows."""
        raise NotImplementedError

    @records("owner_assigned")
    def assign_owner(
        self, *, customer: str, owner: str, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Make ``owner`` the customer's owner, for the command's ``team``."""
        raise NotImplementedError

    @records("owner_released")
    def release_owner(
        self, *, customer: str, at: datetime | str, actor: str, team: str,
        reason: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Leave the customer without an owner."""
        raise NotImplementedError

    @records("handover_sent")
    def send_handover(
        self, *, customer: str, handover_id: str, from_team: str, to_team: str, at: datetime | str,
        actor: str, team: str, to_person: str | None = None,
        document: HandoverDocument | Mapping[str, Any] = EMPTY_DOCUMENT,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Pass the customer from one team to another with a handover document."""
        raise NotImplementedError

    @records("handover_accepted")
    def accept_handover(
        self, *, customer: str, handover_id: str, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Accept a pending handover: the acceptor becomes the owner."""
        raise NotImplementedError

    @records("handover_rejected")
    def reject_handover(
        self, *, customer: str, handover_id: str, reason: str, at: datetime | str, actor: str,
        team: str, correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Reject a pending handover (the owner does not change)."""
        raise NotImplementedError

    @records("purchase")
    def purchase(
        self, *, customer: str, plan: str, mrr: int, currency: str, contract_start: date | str,
        contract_end: date | str, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Record the purchase of a plan: the customer becomes paying."""
        raise NotImplementedError

    @records("payment")
    def payment(
        self, *, customer: str, amount: int, currency: str, at: datetime | str, actor: str,
        team: str, correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Record money received (``amount`` in minor units)."""
        raise NotImplementedError

    @records("renewal")
    def renewal(
        self, *, customer: str, new_contract_end: date | str, at: datetime | str, actor: str,
        team: str, new_mrr: int | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Renew the customer's contract (and optionally change its MRR)."""
        raise NotImplementedError

    @records("expansion")
    def expansion(
        self, *, customer: str, mrr_delta: int, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Raise a paying customer's MRR by ``mrr_delta`` (upsell, cross-sell)."""
        raise NotImplementedError

    @records("contraction")
    def contraction(
        self, *, customer: str, mrr_delta: int, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Lower a paying customer's MRR by ``mrr_delta`` (a downgrade)."""
        raise NotImplementedError

    @records("churned")
    def churn(
        self, *, customer: str, at: datetime | str, actor: str, team: str,
        reason: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Record that a paying customer left: its stage becomes ``churned``."""
        raise NotImplementedError

    @records("won_back")
    def win_back(
        self, *, customer: str, mrr: int, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Win a churned customer back: paying again at ``mrr``."""
        raise NotImplementedError

    @records("nps_answer")
    def nps_answer(
        self, *, customer: str, score: int, at: datetime | str, actor: str, team: str,
        comment: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Record an NPS answer (``score`` 0-10)."""
        raise NotImplementedError

    @records("csat_answer")
    def csat_answer(
        self, *, customer: str, score: int, at: datetime | str, actor: str, team: str,
        comment: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Record a customer satisfaction answer (``score`` 1-5)."""
        raise NotImplementedError

    @records("check_in")
    def check_in(
        self, *, customer: str, at: datetime | str, actor: str, team: str,
        notes: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Record a scheduled conversation with the customer."""
        raise NotImplementedError

    @records("advocacy_requested")
    def request_advocacy(
        self, *, customer: str, kind: AdvocacyKind, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Record that the customer was asked to advocate."""
        raise NotImplementedError

    @records("advocacy_given")
    def give_advocacy(
        self, *, customer: str, kind: AdvocacyKind, at: datetime | str, actor: str, team: str,
        referred_customer: str | None = None, details: str | None = None,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Record that the customer advocated (a referral names ``referred_customer``)."""
        raise NotImplementedError

    @records("event_voided")
    def void_event(
        self, *, customer: str, voided_version: int, reason: str, at: datetime | str, actor: str,
        team: str, correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Void an earlier event of the customer (a correction)."""
        raise NotImplementedError

    @records("gap_assigned")
    def assign_gap(
        self, *, customer: str, gap_id: str, assignee: str, at: datetime | str, actor: str,
        team: str, correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Give a gap of the customer (its id as ``gaps --json`` gives it) to a person."""
        raise NotImplementedError

    @records("gap_snoozed")
    def snooze_gap(
        self, *, customer: str, gap_id: str, until: date | str, reason: str,
        at: datetime | str, actor: str, team: str, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Put a gap aside until a day (after the day of ``at``): hidden until then."""
        raise NotImplementedError

    @records("gap_dismissed")
    def dismiss_gap(
        self, *, customer: str, gap_id: str, reason: str, at: datetime | str, actor: str,
        team: str, correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Close a gap without action: hidden while its situation lasts."""
        raise NotImplementedError

    @records("campaign_announced")
    def announce_campaign(
        self, *, campaign: str, name: str, offer: str, starts: date | str, ends: date | str,
        owning_team: str, at: datetime | str, actor: str, team: str, discount_percent: int = 0,
        segment: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Announce a campaign in the shared registry."""
        raise NotImplementedError

    @records("campaign_amended")
    def amend_campaign(
        self, *, campaign: str, at: datetime | str, actor: str, team: str, name: str | None = None,
        offer: str | None = None, discount_percent: int | None = None,
        starts: date | str | None = None, ends: date | str | None = None,
        segment: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Change some details of a campaign (omitted ones keep their value)."""
        raise NotImplementedError

    @records("campaign_ended")
    def end_campaign(
        self, *, campaign: str, at: datetime | str, actor: str, team: str,
        reason: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """End a campaign early (or confirm its end)."""
        raise NotImplementedError

    # ------------------------------------------------------------------- users
    # The people of the web console (``domain/user.py``); the actor and team are the
    # administrator's. ``password_hash`` comes from ``domain.user.hash_password``.

    @records("user_added", USER_METHODS)
    def add_user(
        self, *, user: str, user_team: str, role: Role, password_hash: str,
        at: datetime | str, actor: str, team: str, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Add a person who signs in to the console (``user_added``)."""
        raise NotImplementedError

    @records("user_role_changed", USER_METHODS)
    def change_user_role(
        self, *, user: str, role: Role, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Change a user's role (``user_role_changed``)."""
        raise NotImplementedError

    @records("user_password_changed", USER_METHODS)
    def change_user_password(
        self, *, user: str, password_hash: str, at: datetime | str, actor: str, team: str,
        correlation_id: str | None = None, causation_id: str | None = None,
    ) -> int:
        """Set a user's new password hash (``user_password_changed``)."""
        raise NotImplementedError

    @records("user_disabled", USER_METHODS)
    def disable_user(
        self, *, user: str, at: datetime | str, actor: str, team: str,
        reason: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Disable a user: they can no longer sign in (``user_disabled``)."""
        raise NotImplementedError

    # -------------------------------------------------------------- API tokens
    # The integrations of the HTTP API (``domain/token.py``); the actor and team are the
    # administrator's. ``token_hash`` comes from ``domain.token.token_hash``.

    @records("token_added", USER_METHODS)
    def add_token(
        self, *, token: str, scope: Scope, token_hash: str, at: datetime | str, actor: str,
        team: str, act_for_others: bool = False, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Issue an API token (``token_added``)."""
        raise NotImplementedError

    @records("token_revoked", USER_METHODS)
    def revoke_token(
        self, *, token: str, at: datetime | str, actor: str, team: str,
        reason: str | None = None, correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> int:
        """Revoke an API token: it is refused from then on (``token_revoked``)."""
        raise NotImplementedError
