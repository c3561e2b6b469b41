"""Every command through the embedded API on memory, SQLite and PostgreSQL: each of the 27
commands records its event, every rule refuses with an error naming the field and the value,
and a refused command writes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from lifecycle_samples import ACME_VERSION, FULL_LIFECYCLE, METHOD

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import COMMANDS, build_command
from lifecycle_es.domain import CHURNED, Customer
from lifecycle_es.errors import (
    InvalidInput,
    InvariantViolation,
    LifecycleError,
    TransitionNotAllowed,
    UnknownCampaign,
    UnknownCustomer,
)

EXAMPLE_TOML = Path(__file__).parent.parent / "docs" / "examples" / "stage-model.toml"
WHO = {"customer": "acme", "at": "2024-03-01T09:00:00Z", "actor": "ann", "team": "sales"}
CAMPAIGN = {"campaign": "spring", "at": "2024-03-01T09:00:00Z", "actor": "mia",
            "team": "marketing"}


def run(engine: LifecycleEngine, commands: list[dict[str, Any]]) -> list[int]:
    """Call the library method of each command; return the versions they answered."""
    return [getattr(engine, METHOD[c["type"]])(**{k: v for k, v in c.items() if k != "type"})
            for c in commands]


def test_the_sample_history_uses_all_27_commands() -> None:
    assert set(METHOD) == set(COMMANDS) == {c["type"] for c in FULL_LIFECYCLE}
    assert len(COMMANDS) == 27


def test_every_command_records_its_event(engine: LifecycleEngine, store_url: str) -> None:
    versions = run(engine, FULL_LIFECYCLE)
    acme_versions = [v for c, v in zip(FULL_LIFECYCLE, versions, strict=True)
                     if c.get("customer") == "acme"]
    assert acme_versions == list(range(1, ACME_VERSION + 1))
    assert versions[:2] == [1, 2] and versions[-1] == 3  # the campaign's own versions

    s = engine.customer("acme").state
    assert (s.stage, s.paying, s.plan, s.mrr, s.currency) == (
        engine.stage_model.reentry_stage, True, "pro", 3000, "EUR")
    assert (s.total_paid, s.contract_end, s.regressions) == (4900, date(2026, 2, 6), 0)
    assert (s.owner, s.owner_team) == ("sue", "success")
    assert {h: v.status for h, v in s.handovers.items()} == {"warm-1": "rejected",
                                                             "h-1": "accepted"}
    assert (s.last_nps, s.last_csat, s.advocacy_requested, s.advocacy_given) == (9, 4, 1, 1)
    assert engine.customer("acme").voided == {22: 23}
    assert engine.customer("globex").state.source == "referral"

    history = engine.history("acme")
    assert [e.TYPE for e in history] == [c["type"] for c in FULL_LIFECYCLE
                                         if c.get("customer") == "acme"]
    acme_cmds = [c for c in FULL_LIFECYCLE if c.get("customer") == "acme"]
    for event, cmd in zip(history, acme_cmds, strict=True):
        assert event.occurred_at == datetime.fromisoformat(cmd["at"])
        assert (event.actor, event.team, event.customer) == (cmd["actor"], cmd["team"], "acme")
        assert event.timestamp > event.occurred_at  # recording time is kept separately
    purchase = next(e for e in history if isinstance(e, Customer.Purchased))
    assert (purchase.contract_start, purchase.contract_end) == (date(2024, 2, 7),
                                                                date(2025, 2, 6))
    sent = next(e for e in history if isinstance(e, Customer.HandoverSent)
                and e.handover_id == "h-1")
    assert sent.document["features_of_interest"] == ["SSO", "API"]
    assert sent.document["notes"] == "CFO is sceptical"

    campaign = engine.campaign("spring")
    assert campaign.details["ends"] == date(2024, 5, 31) and campaign.ended_at is not None

    if not store_url.startswith("memory"):  # a second engine reads the same facts back
        fresh = LifecycleEngine(store_url)
        try:
            again = fresh.customer("acme")
            assert again.state == engine.customer("acme").state
            assert again.version == ACME_VERSION
            assert [vars(e) for e in fresh.history("acme")] == [vars(e) for e in history]
            assert fresh.campaign("spring").details == campaign.details
        finally:
            fresh.close()


# ------------------------------------------------------------------------ refusals

def c(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, **WHO, **fields}


def k(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, **CAMPAIGN, **fields}


NEW = [k("campaign_announced", name="Spring", offer="20% off", starts="2024-03-01",
         ends="2024-05-31", owning_team="marketing"),
       c("customer_registered", name="Acme", segment="smb", source="web")]
PAYING = [*NEW, c("stage_changed", to_stage="purchase"),
          c("purchase", plan="pro", mrr=1000, currency="EUR", contract_start="2024-03-01",
            contract_end="2025-02-28")]
CHURNED_ = [*PAYING, c("churned", reason="price")]
HANDED = [*NEW, c("handover_sent", handover_id="h1", from_team="sales", to_team="success"),
          c("handover_accepted", handover_id="h1", team="success")]
VOIDED = [*NEW, c("nps_answer", score=5), c("event_voided", voided_version=2, reason="x")]
ENDED = [*NEW, k("campaign_ended")]

REFUSALS: list[tuple[str, list[dict[str, Any]], dict[str, Any], str, Any, type[Exception]]] = [
    # id, setup, command, field, value, error
    ("unregistered customer", NEW, c("payment", customer="ghost", amount=1, currency="EUR"),
     "customer", "ghost", UnknownCustomer),
    ("registered twice", NEW, c("customer_registered", name="A", segment="s", source="w"),
     "customer", "acme", InvariantViolation),
    ("unknown initial stage", NEW, c("customer_registered", customer="b", name="B",
                                     segment="s", source="w", stage="nowhere"),
     "stage", "nowhere", InvariantViolation),
    ("initial stage churned", NEW, c("customer_registered", customer="b", name="B",
                                     segment="s", source="w", stage=CHURNED),
     "stage", CHURNED, InvariantViolation),
    ("unknown stage", NEW, c("stage_changed", to_stage="nowhere"), "to_stage", "nowhere",
     InvariantViolation),
    ("same stage", NEW, c("stage_changed", to_stage="awareness"), "to_stage", "awareness",
     InvariantViolation),
    ("stage_changed to churned", PAYING, c("stage_changed", to_stage=CHURNED), "to_stage",
     CHURNED, InvariantViolation),
    ("stage change from churned", CHURNED_, c("stage_changed", to_stage="retention"),
     "to_stage", "retention", TransitionNotAllowed),
    ("release without owner", NEW, c("owner_released"), "owner", None, InvariantViolation),
    ("accept unsent handover", NEW, c("handover_accepted", handover_id="h9"), "handover_id",
     "h9", InvariantViolation),
    ("reject unsent handover", NEW, c("handover_rejected", handover_id="h9", reason="no"),
     "handover_id", "h9", InvariantViolation),
    ("accept handover twice", HANDED, c("handover_accepted", handover_id="h1",
                                        team="success"), "handover_id", "h1",
     InvariantViolation),
    ("reject accepted handover", HANDED, c("handover_rejected", handover_id="h1",
                                           reason="late"), "handover_id", "h1",
     InvariantViolation),
    ("handover id reused", HANDED, c("handover_sent", handover_id="h1", from_team="sales",
                                     to_team="support"), "handover_id", "h1",
     InvariantViolation),
    ("nps above 10", NEW, c("nps_answer", score=11), "score", 11, InvalidInput),
    ("nps below 0", NEW, c("nps_answer", score=-1), "score", -1, InvalidInput),
    ("csat below 1", NEW, c("csat_answer", score=0), "score", 0, InvalidInput),
    ("csat above 5", NEW, c("csat_answer", score=6), "score", 6, InvalidInput),
    ("negative amount", PAYING, c("payment", amount=-100, currency="EUR"), "amount", -100,
     InvalidInput),
    ("fractional amount", PAYING, c("payment", amount=10.5, currency="EUR"), "amount", 10.5,
     InvalidInput),
    ("amount as text", PAYING, c("payment", amount="100", currency="EUR"), "amount", "100",
     InvalidInput),
    ("bad currency code", PAYING, c("payment", amount=1, currency="eu"), "currency", "eu",
     InvalidInput),
    ("second currency", PAYING, c("payment", amount=1, currency="USD"), "currency", "USD",
     InvariantViolation),
    ("negative mrr", NEW, c("purchase", plan="p", mrr=-1, currency="EUR",
                            contract_start="2024-03-01", contract_end="2024-04-01"),
     "mrr", -1, InvalidInput),
    ("churn when not paying", NEW, c("churned"), "type", "churned", InvariantViolation),
    ("win back when not churned", PAYING, c("won_back", mrr=10), "type", "won_back",
     InvariantViolation),
    ("purchase when churned", CHURNED_, c("purchase", plan="p", mrr=1, currency="EUR",
                                          contract_start="2024-03-01",
                                          contract_end="2024-04-01"),
     "type", "purchase", InvariantViolation),
    ("renewal when not paying", NEW, c("renewal", new_contract_end="2025-01-01"),
     "new_contract_end", date(2025, 1, 1), InvariantViolation),
    ("expansion when churned", CHURNED_, c("expansion", mrr_delta=5), "mrr_delta", 5,
     InvariantViolation),
    ("contraction above mrr", PAYING, c("contraction", mrr_delta=1001), "mrr_delta", 1001,
     InvariantViolation),
    ("zero expansion", PAYING, c("expansion", mrr_delta=0), "mrr_delta", 0, InvalidInput),
    ("void the registration", NEW, c("event_voided", voided_version=1, reason="x"),
     "voided_version", 1, InvariantViolation),
    ("void a missing event", NEW, c("event_voided", voided_version=7, reason="x"),
     "voided_version", 7, InvariantViolation),
    ("void twice", VOIDED, c("event_voided", voided_version=2, reason="x"),
     "voided_version", 2, InvariantViolation),
    ("void a void", VOIDED, c("event_voided", voided_version=3, reason="x"),
     "voided_version", 3, InvariantViolation),
    ("unknown team", NEW, c("check_in", team="legal"), "team", "legal", InvalidInput),
    ("unknown handover team", NEW, c("handover_sent", handover_id="h2", from_team="sales",
                                     to_team="legal"), "to_team", "legal", InvalidInput),
    ("naive datetime", NEW, c("check_in", at="2024-03-01T09:00:00"), "at",
     "2024-03-01T09:00:00", InvalidInput),
    ("unknown field", NEW, c("check_in", mood="happy"), "mood", "happy", InvalidInput),
    ("missing field", NEW, c("customer_registered", customer="b", segment="s", source="w"),
     "name", None, InvalidInput),
    ("empty actor", NEW, c("check_in", actor=""), "actor", "", InvalidInput),
    ("unknown advocacy kind", NEW, c("advocacy_requested", kind="tweet"), "kind", "tweet",
     InvalidInput),
    ("unknown campaign", NEW, k("campaign_amended", campaign="ghost", name="G"), "campaign",
     "ghost", UnknownCampaign),
    ("campaign announced twice", NEW, k("campaign_announced", name="S", offer="o",
                                        starts="2024-01-01", ends="2024-02-01",
                                        owning_team="marketing"),
     "campaign", "spring", InvariantViolation),
    ("campaign ends before start", NEW, k("campaign_announced", campaign="x", name="X",
                                          offer="o", starts="2024-02-01",
                                          ends="2024-01-01", owning_team="marketing"),
     "ends", date(2024, 1, 1), InvariantViolation),
    ("campaign owning team unknown", NEW, k("campaign_announced", campaign="x", name="X",
                                            offer="o", starts="2024-01-01",
                                            ends="2024-02-01", owning_team="legal"),
     "owning_team", "legal", InvalidInput),
    ("discount above 100", NEW, k("campaign_amended", discount_percent=120),
     "discount_percent", 120, InvalidInput),
    ("empty amendment", NEW, k("campaign_amended"), "campaign", "spring", InvariantViolation),
    ("amend ended campaign", ENDED, k("campaign_amended", name="S2"), "campaign", "spring",
     InvariantViolation),
    ("end campaign twice", ENDED, k("campaign_ended"), "campaign", "spring",
     InvariantViolation),
]


def field_and_value(exc: Exception) -> tuple[str, Any]:
    if isinstance(exc, InvariantViolation):
        return exc.problem.field, exc.problem.value
    if isinstance(exc, InvalidInput):
        assert len(exc.problems) == 1, exc.problems
        return exc.problems[0].field, exc.problems[0].value
    if isinstance(exc, UnknownCustomer):
        return "customer", exc.external_id
    assert isinstance(exc, UnknownCampaign)
    return "campaign", exc.campaign_id


def snapshot(engine: LifecycleEngine) -> tuple[Any, ...]:
    """Everything a refused command must leave as it was."""
    acme = engine.customer("acme")
    return (engine.writer.recorder.max_notification_id(), acme.version, len(engine.history("acme")),
            acme.state, engine.campaign("spring").version)


@pytest.mark.parametrize(("setup", "command", "field", "value", "error"),
                         [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_rule_refuses_naming_field_and_value_and_writes_nothing(
    engine: LifecycleEngine, setup: list[dict[str, Any]], command: dict[str, Any],
    field: str, value: Any, error: type[Exception],
) -> None:
    run(engine, setup)
    before = snapshot(engine)
    with pytest.raises(error) as info:
        run(engine, [command])
    assert isinstance(info.value, LifecycleError)
    assert field_and_value(info.value) == (field, value)
    assert repr(value) in str(info.value)
    if not isinstance(info.value, TransitionNotAllowed):  # names both stages instead
        assert f"{field}={value!r}" in str(info.value)
    assert snapshot(engine) == before


def test_whole_model_checks_name_the_fields_in_the_message(engine: LifecycleEngine) -> None:
    run(engine, NEW)
    before = snapshot(engine)
    with pytest.raises(InvalidInput, match=r"referred_customer is required.*kind='referral'"):
        engine.give_advocacy(**WHO, kind="referral")
    with pytest.raises(InvalidInput, match=r"contract_end='2024-01-01' is before"):
        engine.purchase(**WHO, plan="p", mrr=1, currency="EUR", contract_start="2024-02-01",
                        contract_end="2024-01-01")
    with pytest.raises(InvalidInput) as info:
        engine.record("nope", **WHO)
    assert (info.value.problems[0].field, info.value.problems[0].value) == ("type", "nope")
    assert snapshot(engine) == before


def test_transition_refusal_names_customer_both_stages_and_allowed(
    store_url: str,
) -> None:
    engine = LifecycleEngine(store_url, stage_model=str(EXAMPLE_TOML))
    try:
        engine.register(**WHO, name="Acme", segment="smb", source="web")
        before = engine.writer.recorder.max_notification_id()
        with pytest.raises(TransitionNotAllowed) as info:
            engine.change_stage(**WHO, to_stage="advocate")
        assert str(info.value) == ("customer 'acme': stage change 'lead' -> 'advocate' is not "
                                   "allowed by the stage model (allowed from 'lead': trial)")
        assert engine.writer.recorder.max_notification_id() == before
        engine.change_stage(**WHO, to_stage="trial")
        engine.change_stage(**WHO, to_stage="lead", reason="trial expired")
        moves = [e for e in engine.history("acme") if isinstance(e, Customer.StageChanged)]
        assert [(e.to_stage, e.regression) for e in moves] == [("trial", False), ("lead", True)]
        assert engine.customer("acme").state.regressions == 1
    finally:
        engine.close()


def test_store_default_and_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIFECYCLE_ES_STORE", raising=False)
    default = LifecycleEngine()
    default.register(**WHO, name="Acme", segment="smb", source="web")
    default.close()
    assert (tmp_path / "lifecycle.db").exists()
    monkeypatch.setenv("LIFECYCLE_ES_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    from_env = LifecycleEngine()
    with pytest.raises(UnknownCustomer):
        from_env.customer("acme")
    from_env.close()
    assert (tmp_path / "env.db").exists()


def test_reading_unknown_customer_or_campaign(engine: LifecycleEngine) -> None:
    for read in (engine.customer, engine.history):
        read_: Callable[[str], Any] = read
        with pytest.raises(UnknownCustomer, match="customer='ghost'"):
            read_("ghost")
    with pytest.raises(UnknownCampaign, match="campaign='ghost'"):
        engine.campaign("ghost")


def test_stored_aggregate_of_a_command(engine: LifecycleEngine) -> None:
    check_in = build_command("check_in", {**WHO, "customer": "zed"})
    announce = build_command("campaign_announced", {
        "at": WHO["at"], "actor": "ann", "team": "marketing", "campaign": "fall",
        "name": "Fall", "offer": "o", "starts": "2024-09-01", "ends": "2024-10-01",
        "owning_team": "marketing"})
    assert engine.stored_aggregate(check_in) is None
    assert engine.stored_aggregate(announce) is None
    engine.register(**{**WHO, "customer": "zed"}, name="Zed", segment="smb", source="web")
    engine.execute(announce)
    customer = engine.stored_aggregate(check_in)
    assert isinstance(customer, Customer) and customer.state.external_id == "zed"
    campaign = engine.stored_aggregate(announce)
    assert campaign is not None and campaign.id == engine.campaign("fall").id
    # the dry run docs/commands.md describes: checked, events pending, nothing saved
    check_in.check_teams(engine.stage_model.teams)
    dry = check_in.apply_to(customer, engine.stage_model)
    assert dry is customer and [e.TYPE for e in dry.pending_events] == ["check_in"]
    assert len(engine.history("zed")) == 1
    with pytest.raises(InvariantViolation, match="already registered"):
        announce.apply_to(campaign, engine.stage_model)


# ------------------------------------------------------------------- the reference

DOC = Path(__file__).parent.parent / "docs" / "commands.md"


def test_commands_md_documents_exactly_the_fields_of_every_command() -> None:
    text = DOC.read_text()
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    common = {"type", "at", "actor", "team", "correlation_id", "causation_id", "customer"}
    for type_, cls in COMMANDS.items():
        section = next(s for s in sections if f"`{type_}`" in s.splitlines()[0])
        documented = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
        expected = set(cls.model_fields) - common
        assert documented == expected, type_
        assert f"engine.{METHOD[type_]}(" in section


def test_commands_md_examples_are_one_valid_history() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    engine = LifecycleEngine("memory://")
    result = engine.import_lines(lines)
    assert set(result.by_type) == set(COMMANDS)
    assert engine.customer("acme").version == 26
    assert engine.customer("acme").voided == {17: 23}
    assert engine.customer("acme").state.owner == "sue"


def test_each_command_is_logged_with_outcome_and_duration(engine: LifecycleEngine) -> None:
    import logging

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.events: list[dict[str, Any]] = []

        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, dict):
                self.events.append(record.msg)

    run(engine, NEW)
    logger, keep = logging.getLogger("lifecycle_es.writing"), Keep()
    old_level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        engine.payment(**WHO, amount=5, currency="EUR")
        with pytest.raises(InvariantViolation):
            engine.churn(**WHO)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(old_level)
    commands = [e for e in keep.events if e["event"] == "command"]
    assert [(e["command"], e["key"], e["outcome"]) for e in commands] == [
        ("payment", "acme", "ok"), ("churned", "acme", "InvariantViolation")]
    assert all(isinstance(e["ms"], float) for e in commands)
