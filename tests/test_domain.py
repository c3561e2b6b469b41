"""The domain without a store: the stage model, every rule of the Customer and Campaign
aggregates, regressions, and voids re-folding the state.

Commands are built exactly as the engine builds them (``build_command``) and applied to an
in-memory aggregate; storage behaviour is covered in test_commands.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle_es.commands import build_command
from lifecycle_es.domain import (
    CHURNED,
    CLASSIC,
    CUSTOMER_SUCCESS,
    PRESETS,
    Campaign,
    Customer,
    StageModel,
    load_stage_model,
)
from lifecycle_es.domain.ids import campaign_id, customer_id
from lifecycle_es.errors import (
    ConfigError,
    InvalidInput,
    InvariantViolation,
    TransitionNotAllowed,
)

EXAMPLE_TOML = Path(__file__).parent.parent / "docs" / "examples" / "stage-model.toml"
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


class Life:
    """One customer's aggregate plus a clock; ``do`` applies a command like the engine does."""

    def __init__(self, model: StageModel = CLASSIC, **register: Any) -> None:
        self.model = model
        self.clock = T0
        fields = {"name": "Acme", "segment": "smb", "source": "web", **register}
        cmd = build_command("customer_registered", {**self.meta(), **fields})
        self.c: Customer = cmd.create(model)  # type: ignore[attr-defined]

    def meta(self, team: str = "sales", actor: str = "ann") -> dict[str, Any]:
        self.clock += timedelta(hours=1)
        return {"customer": "acme", "at": self.clock, "actor": actor, "team": team}

    def do(self, type_: str, team: str = "sales", actor: str = "ann", **fields: Any) -> None:
        cmd = build_command(type_, {**self.meta(team, actor), **fields})
        cmd.apply(self.c, self.model)  # type: ignore[attr-defined]

    def paying(self, mrr: int = 1000, currency: str = "EUR") -> Life:
        self.do("purchase", plan="pro", mrr=mrr, currency=currency,
                contract_start="2024-01-01", contract_end="2024-12-31")
        return self

    @property
    def s(self) -> Any:
        return self.c.state

    def refused(self, type_: str, field: str, value: Any, **fields: Any) -> InvariantViolation:
        """Assert the command is refused naming ``field`` and ``value``; nothing triggered."""
        before = (self.c.version, len(self.c.recent), len(self.c.pending_events), self.s)
        with pytest.raises(InvariantViolation) as info:
            self.do(type_, **fields)
        assert info.value.problem.field == field
        assert info.value.problem.value == value
        assert repr(value) in str(info.value)
        assert (self.c.version, len(self.c.recent), len(self.c.pending_events), self.s) == before
        return info.value


def invalid(type_: str, **fields: Any) -> InvalidInput:
    meta = {"at": T0, "actor": "ann", "team": "sales"}
    if not type_.startswith("campaign_"):
        meta["customer"] = "acme"
    with pytest.raises(InvalidInput) as info:
        build_command(type_, {**meta, **fields})
    return info.value


# ------------------------------------------------------------------------- stage model


def test_presets_have_the_documented_stages_and_teams() -> None:
    assert PRESETS == {"classic": CLASSIC, "customer-success": CUSTOMER_SUCCESS}
    assert CLASSIC.names == ["awareness", "consideration", "purchase", "onboarding",
                             "retention", "advocacy"]
    assert CUSTOMER_SUCCESS.names == ["acquisition", "onboarding", "adoption", "growth",
                                      "retention", "advocacy"]
    assert CLASSIC.stage("awareness").team == "marketing"
    assert CLASSIC.stage("purchase").team == "sales" and CLASSIC.stage("purchase").paying
    assert not CLASSIC.stage("consideration").paying
    assert CLASSIC.first_stage == "awareness" and CUSTOMER_SUCCESS.first_stage == "acquisition"
    assert CLASSIC.reentry_stage == CUSTOMER_SUCCESS.reentry_stage == "onboarding"


def test_churned_is_built_in_terminal_and_sorts_last() -> None:
    assert CLASSIC.has_stage(CHURNED) and CHURNED not in CLASSIC.names
    assert CLASSIC.allowed_targets(CHURNED) == []
    assert CLASSIC.index(CHURNED) == len(CLASSIC.names)
    assert not CLASSIC.stage(CHURNED).paying


def test_free_model_allows_every_move_and_flags_backward_ones() -> None:
    assert CLASSIC.allowed_targets("purchase") == [
        "awareness", "consideration", "onboarding", "retention", "advocacy"]
    assert CLASSIC.is_regression("retention", "consideration")
    assert not CLASSIC.is_regression("consideration", "retention")


def test_load_stage_model_by_name_path_or_default() -> None:
    assert load_stage_model(None) is CLASSIC
    assert load_stage_model("customer-success") is CUSTOMER_SUCCESS
    assert load_stage_model(str(EXAMPLE_TOML)).name == "b2b-saas"
    with pytest.raises(ConfigError, match=r"'nope'.*not a preset"):
        load_stage_model("nope")


def test_documented_example_toml_loads_with_its_transitions() -> None:
    model = StageModel.from_toml(EXAMPLE_TOML)
    assert model.names == ["lead", "trial", "customer", "expansion", "advocate"]
    assert model.teams == ["marketing", "sales", "success", "support"]
    assert [s.name for s in model.stages if s.paying] == ["customer", "expansion", "advocate"]
    assert model.reentry_stage == "customer"
    assert model.allowed_targets("lead") == ["trial"]
    assert model.allowed_targets("trial") == ["lead", "customer"]
    assert model.is_regression("trial", "lead")
    assert model.stage("trial").stall_after_days == 30


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('name="m"\n[[stages]]\nname="a"\nteam="sales"\npaying=true\n'
         '[[stages]]\nname="a"\nteam="sales"\n', "duplicate stage names"),
        ('name="m"\n[[stages]]\nname="churned"\nteam="sales"\npaying=true\n',
         "'churned' is built in"),
        ('name="m"\n[[stages]]\nname="a"\nteam="legal"\npaying=true\n', "unknown team 'legal'"),
        ('name="m"\n[[stages]]\nname="a"\nteam="sales"\n', "at least one stage must be paying"),
        ('name="m"\n[[stages]]\nname="a"\nteam="sales"\npaying=true\n[transitions]\na=["zz"]\n',
         "unknown stage 'zz'"),
        ('name="m"\nwin_back_stage="zz"\n[[stages]]\nname="a"\nteam="sales"\npaying=true\n',
         "win_back_stage: unknown stage 'zz'"),
        ('name="m"\n[[stages]]\nname="a"\nteam="sales"\npaying=true\ncolour="red"\n',
         "colour"),
        ('name="m"\n[[stages]]\nname="a"\nteam="sales"\npaying=true\nstall_after_days=0\n',
         "stall_after_days"),
        ('name = \n', "stage model file"),
    ],
)
def test_invalid_toml_models_are_refused_with_the_reason(
    tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "model.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        StageModel.from_toml(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_toml_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_stage_model(str(tmp_path / "absent.toml"))


# ------------------------------------------------------------------------ ids


def test_ids_are_stable_uuid5_and_namespaced_per_aggregate() -> None:
    assert customer_id("acme") == customer_id("acme") != customer_id("acme2")
    assert customer_id("acme").version == 5
    assert customer_id("acme") != campaign_id("acme")
    assert Life().c.id == customer_id("acme")


# ------------------------------------------------------------------- registration


def test_registration_defaults_to_first_stage_and_records_who_and_when() -> None:
    life = Life()
    assert life.s.stage == "awareness" and life.s.external_id == "acme"
    assert life.s.registered_at == life.s.stage_since == T0 + timedelta(hours=1)
    event = life.c.recent[0]
    assert isinstance(event, Customer.Registered)
    assert (event.actor, event.team, event.name, event.source) == ("ann", "sales", "Acme", "web")
    assert event.PERSONAL == ("name",)


def test_registration_may_give_an_initial_stage() -> None:
    assert Life(stage="consideration").s.stage == "consideration"
    assert Life(CUSTOMER_SUCCESS).s.stage == "acquisition"


@pytest.mark.parametrize("stage", ["nowhere", CHURNED])
def test_registration_refuses_unknown_or_churned_initial_stage(stage: str) -> None:
    with pytest.raises(InvariantViolation) as info:
        Life(stage=stage)
    assert (info.value.problem.field, info.value.problem.value) == ("stage", stage)


# ------------------------------------------------------------------ stage changes


def test_forward_move_is_not_a_regression_backward_move_is() -> None:
    life = Life()
    life.do("stage_changed", to_stage="purchase", reason="demo went well")
    assert (life.s.stage, life.s.regressions) == ("purchase", 0)
    life.do("stage_changed", to_stage="consideration", reason="budget frozen")
    assert (life.s.stage, life.s.regressions) == ("consideration", 1)
    moves = [e for e in life.c.recent if isinstance(e, Customer.StageChanged)]
    assert [(m.from_stage, m.to_stage, m.regression) for m in moves] == [
        ("awareness", "purchase", False), ("purchase", "consideration", True)]
    assert life.s.stage_since == moves[-1].occurred_at


def test_transition_the_model_forbids_names_customer_stages_and_allowed_targets() -> None:
    model = StageModel.from_toml(EXAMPLE_TOML)
    life = Life(model)
    exc = life.refused("stage_changed", "to_stage", "customer", to_stage="customer")
    assert isinstance(exc, TransitionNotAllowed)
    assert (exc.customer, exc.from_stage, exc.to_stage, exc.allowed) == (
        "acme", "lead", "customer", ["trial"])
    assert str(exc) == ("customer 'acme': stage change 'lead' -> 'customer' is not allowed by "
                        "the stage model (allowed from 'lead': trial)")
    life.do("stage_changed", to_stage="trial")
    life.do("stage_changed", to_stage="lead")  # allowed backward move: a regression
    assert life.s.regressions == 1


@pytest.mark.parametrize(("to_stage", "reason"), [
    ("nowhere", "not a stage of model 'classic'"),
    (CHURNED, "use churned/won_back"),
    ("awareness", "already in that stage"),
])
def test_stage_change_to_unknown_churned_or_same_stage_is_refused(
    to_stage: str, reason: str
) -> None:
    assert reason in str(Life().refused("stage_changed", "to_stage", to_stage,
                                        to_stage=to_stage))


def test_churned_customer_cannot_change_stage_only_win_back() -> None:
    life = Life().paying()
    life.do("churned", reason="price")
    exc = life.refused("stage_changed", "to_stage", "retention", to_stage="retention")
    assert isinstance(exc, TransitionNotAllowed) and exc.allowed == []


# ------------------------------------------------------------- owners and handovers


def test_owner_assigned_then_released() -> None:
    life = Life()
    life.do("owner_assigned", owner="bob", team="sales")
    assert (life.s.owner, life.s.owner_team) == ("bob", "sales")
    life.do("owner_released", reason="left the company")
    assert (life.s.owner, life.s.owner_team) == (None, None)
    life.refused("owner_released", "owner", None)


def test_handover_accept_makes_acceptor_owner_for_their_team() -> None:
    life = Life()
    life.do("handover_sent", handover_id="h1", from_team="sales", to_team="success",
            to_person="sue", document={"goals": ["live in 30 days"], "risks": ["budget"],
                                       "notes": "CFO is sceptical"})
    h = life.s.handovers["h1"]
    assert (h.status, h.from_team, h.to_team, h.to_person) == ("pending", "sales", "success",
                                                                "sue")
    sent = life.c.recent[-1]
    assert isinstance(sent, Customer.HandoverSent) and sent.PERSONAL == ("document",)
    assert sent.document["goals"] == ["live in 30 days"]
    assert sent.document["features_known"] == []
    life.do("handover_accepted", handover_id="h1", actor="sue", team="success")
    assert life.s.handovers["h1"].status == "accepted"
    assert life.s.handovers["h1"].decided_at == life.clock
    assert (life.s.owner, life.s.owner_team) == ("sue", "success")


def test_handover_can_be_decided_once_and_only_if_sent() -> None:
    life = Life()
    life.refused("handover_accepted", "handover_id", "h9", handover_id="h9")
    life.refused("handover_rejected", "handover_id", "h9", handover_id="h9", reason="no")
    life.do("handover_sent", handover_id="h1", from_team="sales", to_team="support")
    life.refused("handover_sent", "handover_id", "h1", handover_id="h1", from_team="sales",
                 to_team="support")
    life.do("handover_rejected", handover_id="h1", reason="not our product", team="support")
    assert life.s.handovers["h1"].status == "rejected" and life.s.owner is None
    exc = life.refused("handover_accepted", "handover_id", "h1", handover_id="h1")
    assert "already rejected" in str(exc)
    life.do("handover_sent", handover_id="h2", from_team="sales", to_team="support")
    life.do("handover_accepted", handover_id="h2", team="support")
    exc = life.refused("handover_accepted", "handover_id", "h2", handover_id="h2")
    assert "already accepted" in str(exc)
    life.refused("handover_rejected", "handover_id", "h2", handover_id="h2", reason="x")


def test_handover_document_rejects_unknown_keys() -> None:
    exc = invalid("handover_sent", handover_id="h1", from_team="sales", to_team="success",
                  document={"goals": ["a"], "mood": "good"})
    assert [(p.field, p.value) for p in exc.problems] == [("document.mood", "good")]


# ------------------------------------------------------------------------- money


def test_purchase_payment_renewal_expansion_contraction_fold_into_state() -> None:
    life = Life().paying(mrr=5000)
    assert (life.s.paying, life.s.plan, life.s.mrr, life.s.currency) == (True, "pro", 5000,
                                                                        "EUR")
    assert life.s.contract_end == date(2024, 12, 31)
    life.do("payment", amount=5000, currency="EUR")
    life.do("payment", amount=0, currency="EUR")
    assert life.s.total_paid == 5000
    life.do("expansion", mrr_delta=1500)
    life.do("contraction", mrr_delta=500)
    assert life.s.mrr == 6000
    life.do("renewal", new_contract_end="2025-12-31")
    assert (life.s.contract_end, life.s.mrr) == (date(2025, 12, 31), 6000)
    life.do("renewal", new_contract_end="2026-12-31", new_mrr=7000)
    assert life.s.mrr == 7000


def test_currency_is_fixed_by_the_first_money_event() -> None:
    life = Life()
    life.do("payment", amount=100, currency="USD")  # a deposit before any purchase
    exc = life.refused("purchase", "currency", "EUR", plan="pro", mrr=1, currency="EUR",
                       contract_start="2024-01-01", contract_end="2024-02-01")
    assert "pays in USD" in str(exc)
    life.paying(currency="USD")
    life.refused("payment", "currency", "GBP", amount=1, currency="GBP")


@pytest.mark.parametrize(("type_", "fields", "field", "value"), [
    ("payment", {"amount": -1, "currency": "EUR"}, "amount", -1),
    ("payment", {"amount": 1.5, "currency": "EUR"}, "amount", 1.5),
    ("payment", {"amount": "100", "currency": "EUR"}, "amount", "100"),
    ("payment", {"amount": True, "currency": "EUR"}, "amount", True),
    ("payment", {"amount": 1, "currency": "eur"}, "currency", "eur"),
    ("payment", {"amount": 1, "currency": "EURO"}, "currency", "EURO"),
    ("purchase", {"plan": "p", "mrr": -5, "currency": "EUR", "contract_start": "2024-01-01",
                  "contract_end": "2024-02-01"}, "mrr", -5),
    ("renewal", {"new_contract_end": "2025-01-01", "new_mrr": -1}, "new_mrr", -1),
    ("expansion", {"mrr_delta": 0}, "mrr_delta", 0),
    ("contraction", {"mrr_delta": -3}, "mrr_delta", -3),
    ("won_back", {"mrr": -1}, "mrr", -1),
    ("nps_answer", {"score": 11}, "score", 11),
    ("nps_answer", {"score": -1}, "score", -1),
    ("csat_answer", {"score": 0}, "score", 0),
    ("csat_answer", {"score": 6}, "score", 6),
    ("advocacy_requested", {"kind": "tweet"}, "kind", "tweet"),
    ("event_voided", {"voided_version": 0, "reason": "x"}, "voided_version", 0),
])
def test_bad_values_are_refused_naming_field_and_value(
    type_: str, fields: dict[str, Any], field: str, value: Any
) -> None:
    exc = invalid(type_, **fields)
    assert [(p.field, p.value) for p in exc.problems] == [(field, value)]
    assert f"{field}={value!r}" in str(exc)


def test_contract_end_before_start_and_referral_without_customer_are_refused() -> None:
    exc = invalid("purchase", plan="p", mrr=1, currency="EUR", contract_start="2024-02-01",
                  contract_end="2024-01-01")
    assert "contract_end='2024-01-01' is before contract_start='2024-02-01'" in str(exc)
    assert "referred_customer is required" in str(invalid("advocacy_given", kind="referral"))
    assert "only for it" in str(invalid("advocacy_given", kind="review",
                                        referred_customer="x"))


def test_money_changes_need_a_paying_customer() -> None:
    life = Life()
    life.refused("renewal", "new_contract_end", date(2025, 1, 1),
                 new_contract_end="2025-01-01")
    life.refused("expansion", "mrr_delta", 10, mrr_delta=10)
    life.refused("contraction", "mrr_delta", 10, mrr_delta=10)
    life.paying(mrr=100)
    exc = life.refused("contraction", "mrr_delta", 101, mrr_delta=101)
    assert "larger than the MRR 100" in str(exc)


def test_churn_only_when_paying_and_win_back_only_when_churned() -> None:
    life = Life()
    assert "has no purchase yet" in str(life.refused("churned", "type", "churned"))
    life.refused("won_back", "type", "won_back", mrr=100)
    life.paying().do("stage_changed", to_stage="retention")
    life.refused("won_back", "type", "won_back", mrr=100)
    life.do("churned", reason="price")
    assert (life.s.stage, life.s.paying, life.s.mrr) == (CHURNED, False, 0)
    churn = life.c.recent[-1]
    assert isinstance(churn, Customer.Churned) and churn.from_stage == "retention"
    assert "is churned" in str(life.refused("churned", "type", "churned"))
    life.refused("payment", "currency", "USD", amount=1, currency="USD")
    assert "record won_back" in str(life.refused(
        "purchase", "type", "purchase", plan="p", mrr=1, currency="EUR",
        contract_start="2024-01-01", contract_end="2024-02-01"))
    life.refused("expansion", "mrr_delta", 5, mrr_delta=5)
    life.do("won_back", mrr=700)
    assert (life.s.stage, life.s.paying, life.s.mrr) == (CLASSIC.reentry_stage, True, 700)


def test_win_back_goes_to_the_models_win_back_stage() -> None:
    model = StageModel.from_toml(EXAMPLE_TOML)
    life = Life(model).paying()
    life.do("churned")
    life.do("won_back", mrr=10)
    assert life.s.stage == "customer" == model.win_back_stage


# ----------------------------------------------------------- voice and advocacy


def test_voice_of_the_customer_and_advocacy_fold_into_state() -> None:
    life = Life()
    life.do("nps_answer", score=0, comment="awful")
    life.do("nps_answer", score=10)
    life.do("csat_answer", score=5)
    life.do("check_in", notes="all good", team="success")
    life.do("advocacy_requested", kind="case_study", team="success")
    life.do("advocacy_given", kind="referral", referred_customer="globex", team="success")
    s = life.s
    assert (s.last_nps, s.last_csat, s.advocacy_requested, s.advocacy_given) == (10, 5, 1, 1)
    check_in = next(e for e in life.c.recent if isinstance(e, Customer.CheckedIn))
    assert s.last_check_in_at == check_in.occurred_at and s.last_event_at == life.clock
    given = life.c.recent[-1]
    assert isinstance(given, Customer.AdvocacyGiven) and given.referred_customer == "globex"


def test_personal_fields_are_declared_and_exist_on_their_events() -> None:
    from lifecycle_es.domain import CUSTOMER_EVENTS

    personal = {t: c.PERSONAL for t, c in CUSTOMER_EVENTS.items() if c.PERSONAL}
    assert personal == {
        "customer_registered": ("name",), "touchpoint": ("notes",),
        "stage_changed": ("reason",), "owner_released": ("reason",),
        "handover_sent": ("document",), "handover_rejected": ("reason",),
        "churned": ("reason",), "nps_answer": ("comment",), "csat_answer": ("comment",),
        "check_in": ("notes",), "advocacy_given": ("details",), "event_voided": ("reason",),
        "gap_snoozed": ("reason",), "gap_dismissed": ("reason",),
    }
    for cls in CUSTOMER_EVENTS.values():
        for name in cls.PERSONAL:
            assert name in cls.__annotations__


# ------------------------------------------------------------------------- voids


def test_voiding_a_purchase_refolds_money_and_frees_the_currency() -> None:
    life = Life().paying(mrr=900, currency="EUR")
    life.do("payment", amount=900, currency="EUR")
    life.do("event_voided", voided_version=2, reason="entered on the wrong customer")
    assert (life.s.paying, life.s.mrr, life.s.plan, life.s.currency) == (False, 0, None, "EUR")
    life.do("event_voided", voided_version=3, reason="refunded")
    assert (life.s.currency, life.s.total_paid) == (None, 0)
    life.paying(currency="USD")  # the currency is free again
    assert life.s.currency == "USD"
    assert life.c.voided == {2: 4, 3: 5}


def test_voiding_stage_change_churn_and_handover() -> None:
    life = Life().paying()
    life.do("stage_changed", to_stage="retention")  # v3
    life.do("stage_changed", to_stage="consideration")  # v4, a regression
    life.do("event_voided", voided_version=4, reason="clicked wrong stage")
    assert (life.s.stage, life.s.regressions) == ("retention", 0)
    life.do("churned")  # v6
    life.do("event_voided", voided_version=6, reason="they paid after all")
    assert (life.s.stage, life.s.paying) == ("retention", True)
    life.do("handover_sent", handover_id="h1", from_team="sales", to_team="success")  # v8
    life.do("event_voided", voided_version=8, reason="sent twice")
    assert "h1" not in life.s.handovers
    life.refused("handover_accepted", "handover_id", "h1", handover_id="h1")


def test_void_rules_registration_voids_missing_and_double_voids() -> None:
    life = Life()
    life.do("nps_answer", score=3)  # v2
    assert "registration cannot be voided" in str(
        life.refused("event_voided", "voided_version", 1, voided_version=1, reason="x"))
    assert "no such event (1..2)" in str(
        life.refused("event_voided", "voided_version", 3, voided_version=3, reason="x"))
    life.do("event_voided", voided_version=2, reason="wrong survey")  # v3
    assert life.s.last_nps is None
    assert "already voided by version 3" in str(
        life.refused("event_voided", "voided_version", 2, voided_version=2, reason="x"))
    assert "voiding event cannot be voided" in str(
        life.refused("event_voided", "voided_version", 3, voided_version=3, reason="x"))


def test_void_equals_never_having_recorded_the_event() -> None:
    voided, clean = Life(), Life()
    for life in (voided, clean):
        life.clock = T0 + timedelta(days=1)
        life.do("nps_answer", score=9)
    voided.do("owner_assigned", owner="bob")
    voided.do("stage_changed", to_stage="purchase")
    clean.clock = voided.clock
    for life in (voided, clean):
        life.do("check_in", notes="hello")
    voided.do("event_voided", voided_version=3, reason="wrong owner")
    voided.do("event_voided", voided_version=4, reason="wrong customer")
    assert voided.s == clean.s
    assert voided.s.owner is None and voided.s.stage == "awareness"


# ---------------------------------------------------------------------- campaigns


def _campaign(**fields: Any) -> Campaign:
    meta = {"campaign": "spring", "at": T0, "actor": "mia", "team": "marketing"}
    cmd = build_command("campaign_announced", {
        **meta, "name": "Spring", "offer": "20% off", "discount_percent": 20,
        "starts": "2024-03-01", "ends": "2024-05-31", "owning_team": "marketing", **fields})
    return cmd.create(CLASSIC)  # type: ignore[attr-defined, no-any-return]


def _campaign_do(c: Campaign, type_: str, **fields: Any) -> None:
    meta = {"campaign": "spring", "at": T0, "actor": "mia", "team": "marketing"}
    build_command(type_, {**meta, **fields}).apply(c, CLASSIC)  # type: ignore[attr-defined]


def test_campaign_announce_amend_end() -> None:
    c = _campaign(segment="smb")
    assert c.id == campaign_id("spring")
    assert c.details["discount_percent"] == 20 and c.details["segment"] == "smb"
    assert c.running_on(date(2024, 3, 1)) and c.running_on(date(2024, 5, 31))
    assert not c.running_on(date(2024, 6, 1))
    _campaign_do(c, "campaign_amended", ends="2024-06-30", discount_percent=25)
    assert c.details["ends"] == date(2024, 6, 30) and c.details["discount_percent"] == 25
    assert c.running_on(date(2024, 6, 15))
    c_at = datetime(2024, 4, 1, tzinfo=UTC)
    build_command("campaign_ended", {"campaign": "spring", "at": c_at, "actor": "mia",
                                     "team": "marketing"}).apply(c, CLASSIC)  # type: ignore
    assert c.running_on(date(2024, 4, 1)) and not c.running_on(date(2024, 4, 2))


def test_campaign_rules() -> None:
    with pytest.raises(InvariantViolation, match="ends before it starts"):
        _campaign(ends="2024-01-01")
    c = _campaign()
    with pytest.raises(InvariantViolation) as info:
        _campaign_do(c, "campaign_amended", starts="2024-06-01")
    assert (info.value.problem.field, info.value.problem.value) == ("ends", date(2024, 5, 31))
    with pytest.raises(InvariantViolation, match="amendment changes nothing"):
        _campaign_do(c, "campaign_amended")
    _campaign_do(c, "campaign_ended", reason="budget cut")
    with pytest.raises(InvariantViolation, match="already ended; cannot amend"):
        _campaign_do(c, "campaign_amended", name="Late spring")
    with pytest.raises(InvariantViolation, match="already ended; cannot end it again"):
        _campaign_do(c, "campaign_ended")
    assert c.version == 2
    exc = invalid("campaign_announced", campaign="x", name="X", offer="o",
                  discount_percent=101, starts="2024-01-01", ends="2024-02-01",
                  owning_team="marketing")
    assert [(p.field, p.value) for p in exc.problems] == [("discount_percent", 101)]


def test_stage_model_md_shows_the_example_file() -> None:
    import re
    import tomllib

    doc = (EXAMPLE_TOML.parent.parent / "stage-model.md").read_text()
    shown = re.search(r"```toml\n(.*?)```", doc, flags=re.S)
    assert shown is not None
    assert StageModel.model_validate(tomllib.loads(shown[1])) == StageModel.from_toml(
        EXAMPLE_TOML)


def test_lean_trigger_builds_the_events_the_library_builds() -> None:
    """``domain/trigger.py`` keeps ``Aggregate.trigger_event``'s contract: same event class,
    fields (in order), versions and state; bad fields are the dataclass's TypeError."""
    from eventsourcing.domain import Aggregate

    meta = dict(occurred_at=datetime(2024, 1, 2, tzinfo=UTC), actor="ann", team="sales",
                correlation_id=None, causation_id="c1")
    pair = []
    for lean in (True, False):
        c = Customer.register(customer="acme", stage="lead", meta=meta, name="Acme",
                              segment="smb", source="web")
        trig = c.trigger_event if lean else (
            lambda cls, **kw: Aggregate.trigger_event(c, cls, **kw))  # noqa: B023
        trig(c.PaymentReceived, customer="acme", amount=5, currency="EUR", **meta,
             timestamp=datetime(2024, 1, 3, tzinfo=UTC))
        trig(c.OwnerAssigned, owner="bob", customer="acme", **meta,
             timestamp=datetime(2024, 1, 4, tzinfo=UTC))
        pair.append(c)
    lean_c, lib_c = pair
    assert lean_c.version == lib_c.version == 3
    assert lean_c.modified_on == lib_c.modified_on
    assert lean_c.state == lib_c.state
    for a, b in zip(lean_c.collect_events()[1:], lib_c.collect_events()[1:], strict=True):
        assert type(a) is type(b) and a == b and list(vars(a)) == list(vars(b))
    with pytest.raises(TypeError, match="owner"):
        lean_c.trigger_event(Customer.OwnerAssigned, customer="acme", **meta)
    with pytest.raises(TypeError, match="colour"):
        lean_c.trigger_event(Customer.OwnerAssigned, customer="acme", owner="x", colour=1,
                             **meta)
    assert lean_c.version == 3 and not lean_c.collect_events()
