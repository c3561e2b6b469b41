"""Validation at the boundary (issue 14): hostile input is refused with a field error, through
the library, JSON Lines and the CLI, writes nothing, and leaves every read model working.

The limits themselves are documented in docs/commands.md, "Limits".
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import cli
from conftest import PG_URL, STORES, drop_schema, need_postgres
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import parse_command
from lifecycle_es.demo import parse_until
from lifecycle_es.domain.ids import customer_id, normalise_id
from lifecycle_es.errors import (
    ECHO_CHARS,
    FieldProblem,
    InvalidInput,
    InvariantViolation,
    UnknownCustomer,
)
from lifecycle_es.limits import (
    DOCUMENT_BYTES,
    INT64_MAX,
    MAX_MONEY,
    MAX_TIME,
    MIN_TIME,
    free_text,
    plain_text,
)
from lifecycle_es.reading.projection import queries
from lifecycle_es.writing.import_check import line_key

WHO = {"actor": "ann", "at": "2024-03-01T09:00:00Z"}
REGISTER = {"type": "customer_registered", "customer": "acme", "at": "2024-01-02T09:00:00Z",
            "actor": "mia", "team": "marketing", "name": "Acme", "segment": "smb",
            "source": "web"}
PURCHASE = {"type": "purchase", "customer": "acme", "at": "2024-01-05T09:00:00Z",
            "actor": "ann", "team": "sales", "plan": "pro", "mrr": 4900, "currency": "EUR",
            "contract_start": "2024-01-05", "contract_end": "2025-01-04"}
SETUP = [REGISTER, PURCHASE]  # acme is registered and paying

#: a valid command of each type the table below spoils, given the SETUP
BASE: dict[str, dict[str, Any]] = {
    "check_in": {"customer": "acme", "team": "success", "notes": "fine"},
    "customer_registered": {"customer": "newco", "team": "marketing", "name": "Newco",
                            "segment": "smb", "source": "web"},
    "purchase": {"customer": "acme", "team": "sales", "plan": "max", "mrr": 100,
                 "currency": "EUR", "contract_start": "2024-03-01",
                 "contract_end": "2025-02-28"},
    "payment": {"customer": "acme", "team": "sales", "amount": 4900, "currency": "EUR"},
    "renewal": {"customer": "acme", "team": "success", "new_contract_end": "2026-01-04"},
    "expansion": {"customer": "acme", "team": "success", "mrr_delta": 100},
    "event_voided": {"customer": "acme", "team": "success", "voided_version": 2,
                     "reason": "typo"},
    "touchpoint": {"customer": "acme", "team": "marketing", "channel": "email",
                   "campaign_id": "spring"},
    "advocacy_given": {"customer": "acme", "team": "success", "kind": "referral",
                       "referred_customer": "globex"},
    "handover_sent": {"customer": "acme", "team": "sales", "handover_id": "h-1",
                      "from_team": "sales", "to_team": "success"},
    "campaign_announced": {"campaign": "fall", "team": "marketing", "name": "Fall",
                           "offer": "10% off", "starts": "2024-09-01", "ends": "2024-11-30",
                           "owning_team": "marketing"},
    "nps_answer": {"customer": "acme", "team": "success", "score": 9},
}

BIG = "é" * 200
#: (case, command type, fields replaced, the field the problem names)
HOSTILE: list[tuple[str, str, dict[str, Any], str]] = [
    # times outside 1900-01-01T00:00:00Z .. 2199-12-31T23:59:59.999999Z, whatever the offset
    ("at year 1 at +14:00", "check_in", {"at": "0001-01-01T00:00:00+14:00"}, "at"),
    ("at year 9999 at -14:00", "check_in", {"at": "9999-12-31T23:59:59-14:00"}, "at"),
    ("at 1899 UTC", "check_in", {"at": "1899-12-31T23:59:59Z"}, "at"),
    ("at 1900 local, 1899 UTC", "check_in", {"at": "1900-01-01T00:30:00+01:00"}, "at"),
    ("at 2200 UTC", "check_in", {"at": "2200-01-01T00:00:00Z"}, "at"),
    ("at 2199 local, 2200 UTC", "check_in", {"at": "2199-12-31T23:30:00-01:00"}, "at"),
    ("at without offset", "check_in", {"at": "2024-03-01T09:00:00"}, "at"),
    ("contract_start year 1", "purchase", {"contract_start": "0001-01-01"}, "contract_start"),
    ("contract_end year 9999", "purchase", {"contract_end": "9999-12-31"}, "contract_end"),
    ("new_contract_end 2200", "renewal", {"new_contract_end": "2200-01-01"},
     "new_contract_end"),
    ("campaign starts 1899", "campaign_announced", {"starts": "1899-12-31"}, "starts"),
    # integers: money up to 10^15 minor units, any other integer within 64 bits
    ("mrr 2^63", "purchase", {"mrr": 9223372036854775808}, "mrr"),
    ("mrr above the money limit", "purchase", {"mrr": MAX_MONEY + 1}, "mrr"),
    ("amount 10^20", "payment", {"amount": 100000000000000000000}, "amount"),
    ("amount -2^64", "payment", {"amount": -(2**64)}, "amount"),
    ("mrr_delta 2^64", "expansion", {"mrr_delta": 2**64}, "mrr_delta"),
    ("voided_version 2^63", "event_voided", {"voided_version": 2**63}, "voided_version"),
    ("score 2^70", "nps_answer", {"score": 2**70}, "score"),
    # control characters: none in texts and ids; tab and newline only in free text
    ("NUL in a name", "customer_registered", {"name": "Ac\x00me"}, "name"),
    ("escape sequence in an actor", "check_in", {"actor": "ann\x1b[31m"}, "actor"),
    ("newline in a name", "customer_registered", {"name": "Acme\nLtd"}, "name"),
    ("tab in a segment", "customer_registered", {"segment": "s\tmb"}, "segment"),
    ("bidi override in a name", "customer_registered", {"name": "Ac\u202eme"}, "name"),
    ("line separator in a plan", "purchase", {"plan": "pro\u2028max"}, "plan"),
    ("lone surrogate in a name", "customer_registered", {"name": "Ac\ud800me"}, "name"),
    ("NUL in notes", "check_in", {"notes": "a\x00b"}, "notes"),
    ("carriage return in notes", "check_in", {"notes": "a\r\nb"}, "notes"),
    ("DEL in a reason", "event_voided", {"reason": "ty\x7fpo"}, "reason"),
    ("C1 control in a comment", "nps_answer", {"comment": "o\x85k"}, "comment"),
    ("NUL in a team", "check_in", {"team": "success\x00"}, "team"),
    # sizes
    ("name of 1 MB", "customer_registered", {"name": "N" * 2**20}, "name"),
    ("notes of 10 001 characters", "check_in", {"notes": "n" * 10_001}, "notes"),
    ("101 goals", "handover_sent", {"document": {"goals": ["g"] * 101}}, "document.goals"),
    ("document over 64 KiB", "handover_sent",
     {"document": {"goals": [BIG] * 100, "risks": [BIG] * 100}}, "document"),
    # ids: invisible and control characters refused, empty refused
    ("zero width space in a customer", "check_in", {"customer": "acme\u200b"}, "customer"),
    ("BOM before a customer", "check_in", {"customer": "\ufeffacme"}, "customer"),
    ("bidi isolate in a customer", "check_in", {"customer": "ac\u2066me"}, "customer"),
    ("soft hyphen in a customer", "customer_registered", {"customer": "new\u00adco"},
     "customer"),
    ("only invisible characters", "customer_registered", {"customer": "\u200b\u200b"},
     "customer"),
    ("only spaces", "customer_registered", {"customer": "   "}, "customer"),
    ("NUL in a customer", "customer_registered", {"customer": "new\x00co"}, "customer"),
    ("customer of 201 characters", "customer_registered", {"customer": "c" * 201},
     "customer"),
    ("word joiner in a referred customer", "advocacy_given",
     {"referred_customer": "glo\u2060bex"}, "referred_customer"),
    ("zero width space in a campaign id", "touchpoint", {"campaign_id": "spring\u200b"},
     "campaign_id"),
    ("zero width space in a campaign", "campaign_announced", {"campaign": "fa\u200bll"},
     "campaign"),
    ("bidi mark in a handover id", "handover_sent", {"handover_id": "h-1\u200f"},
     "handover_id"),
    ("NUL in a correlation id", "check_in", {"correlation_id": "c\x00"}, "correlation_id"),
]
IDS = [case[0] for case in HOSTILE]

#: values that are odd but harmless: accepted and kept exactly (names in NFC)
ACCEPTED: list[tuple[str, str, dict[str, Any], str, Any]] = [
    ("markup in a name", "customer_registered", {"name": "[/]"}, "name", "[/]"),
    ("a link in an actor", "check_in", {"actor": "[link=https://evil.example/x]ann[/link]"},
     "actor", "[link=https://evil.example/x]ann[/link]"),
    ("html in notes", "check_in", {"notes": "<script>alert(1)</script>"}, "notes",
     "<script>alert(1)</script>"),
    ("tab and newline in notes", "check_in", {"notes": "a\tb\nc"}, "notes", "a\tb\nc"),
    ("a name in NFD", "customer_registered", {"name": "Cafe\u0301"}, "name", "Café"),
    ("an emoji with a joiner", "customer_registered", {"name": "👩\u200d💻 Ltd"}, "name",
     "👩\u200d💻 Ltd"),
    ("Cyrillic look-alike id", "customer_registered", {"customer": "асме"}, "customer",
     "асме"),
    ("the earliest time", "check_in", {"at": "1900-01-01T00:00:00Z"}, "occurred_at",
     datetime(1900, 1, 1, tzinfo=UTC)),
    ("the latest time at +10:00", "check_in", {"at": "2200-01-01T09:59:59.999999+10:00"},
     "occurred_at", MAX_TIME),
    ("the latest contract end", "purchase", {"contract_end": "2199-12-31"}, "contract_end",
     date(2199, 12, 31)),
    ("the largest mrr", "purchase", {"mrr": MAX_MONEY}, "mrr", MAX_MONEY),
    ("notes of 10 000 characters", "check_in", {"notes": "n" * 10_000}, "notes",
     "n" * 10_000),
]


def command(type_: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, **WHO, **BASE[type_], **fields}


def kwargs(cmd: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cmd.items() if k != "type"}


def written(engine: LifecycleEngine) -> int:
    return engine.writer.recorder.max_notification_id() or 0


def set_up(engine: LifecycleEngine) -> None:
    for cmd in SETUP:
        engine.record(cmd["type"], **kwargs(cmd))


def up_to_date(engine: LifecycleEngine) -> None:
    engine.projections.catch_up()
    states = {s.name: s.state for s in engine.projections.status()}
    assert set(states.values()) == {"up to date"}, states


def read_models_work(engine: LifecycleEngine) -> None:
    """Every read model catches up, and the stage, gaps, health and audit queries answer."""
    up_to_date(engine)
    counts = {r["stage"]: r["customers"] for r in queries.stage_counts(engine.projections)}
    assert sum(counts.values()) == len({c["customer"] for c in SETUP})
    assert queries.customer_stage(engine.projections, "acme")["paying"]
    at = datetime(2024, 6, 1, tzinfo=UTC)
    engine.gaps(at)
    assert [h.customer for h in engine.health(as_of=at)] == ["acme"]
    assert len(engine.audit.events(customer="acme").events) == written(engine)
    engine.metrics.summary("2024-01-01", "2024-07-01")


@pytest.fixture
def ready(engine: LifecycleEngine) -> LifecycleEngine:
    set_up(engine)
    return engine


def module_store(kind: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[LifecycleEngine]:
    """An engine on a new store of ``kind`` holding SETUP, for a module-scoped fixture."""
    schema = None
    if kind == "memory":
        url = "memory://"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('boundary') / 'store.db'}"
    else:
        need_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    engine = LifecycleEngine(url)
    set_up(engine)
    yield engine
    engine.close()
    if schema is not None:
        drop_schema(schema)


@pytest.fixture(scope="module", params=STORES)
def shared(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleEngine]:
    """One store of each kind holding SETUP, shared by the tests that must write nothing
    (each of them checks that it did not)."""
    yield from module_store(request.param, tmp_path_factory)


# ---------------------------------------------------------------- library


@pytest.mark.parametrize(("case", "type_", "fields", "field"), HOSTILE, ids=IDS)
def test_library_refuses_with_a_field_error(shared: LifecycleEngine, case: str, type_: str,
                                            fields: dict[str, Any], field: str) -> None:
    before = written(shared)
    with pytest.raises(InvalidInput) as err:
        shared.record(type_, **kwargs(command(type_, fields)))
    assert {p.field for p in err.value.problems} == {field}
    message = str(err.value)
    assert "\n" not in message and len(message) < 600, message
    assert written(shared) == before


def test_each_base_command_is_valid() -> None:
    """The table's commands differ from an accepted one only by the hostile field."""
    for type_ in BASE:
        engine = LifecycleEngine("memory://")
        set_up(engine)
        engine.record(type_, **kwargs(command(type_, {})))
        engine.close()


@pytest.mark.parametrize(("case", "type_", "fields", "attr", "stored"), ACCEPTED,
                         ids=[c[0] for c in ACCEPTED])
def test_harmless_values_are_kept_exactly(ready: LifecycleEngine, case: str, type_: str,
                                          fields: dict[str, Any], attr: str,
                                          stored: Any) -> None:
    cmd = command(type_, fields)
    ready.record(type_, **kwargs(cmd))
    event = ready.history(cmd["customer"])[-1]
    assert getattr(event, attr) == stored
    if isinstance(stored, datetime):
        assert event.occurred_at.utcoffset() == timedelta(0)
    up_to_date(ready)
    ready.audit.timeline(cmd["customer"])
    ready.gaps(datetime(2024, 6, 1, tzinfo=UTC))


def test_times_are_kept_in_utc(ready: LifecycleEngine) -> None:
    ready.check_in(customer="acme", at="2024-03-01T10:30:00+01:30", actor="sue",
                   team="success")
    at = ready.history("acme")[-1].occurred_at
    assert at == datetime(2024, 3, 1, 9, tzinfo=UTC) and at.tzinfo is UTC


def test_extreme_accepted_times_leave_read_models_working(ready: LifecycleEngine) -> None:
    ready.renewal(customer="acme", at="2199-12-31T23:59:59.999999Z", actor="sue",
                  team="success", new_contract_end="2199-12-31")
    ready.check_in(customer="acme", at="1900-01-01T00:00:00Z", actor="sue", team="success")
    ready.register(**{**kwargs(REGISTER), "customer": "old", "at": "1900-01-01T00:00:00Z"})
    ready.purchase(**{**kwargs(PURCHASE), "customer": "old", "at": "1900-01-01T00:00:00Z",
                      "contract_start": "1900-01-01", "contract_end": "1900-01-01"})
    ready.payment(customer="old", at="1900-01-01T00:00:00Z", actor="bill", team="support",
                  amount=MAX_MONEY, currency="EUR")
    up_to_date(ready)
    for as_of in (MIN_TIME, MAX_TIME):
        ready.gaps(as_of)
        ready.health(as_of=as_of)
        ready.metrics.cohorts(as_of=as_of)
        ready.metrics.time_in_stage(as_of=as_of)
    ready.metrics.summary(MIN_TIME, MAX_TIME)
    ready.metrics.funnel(MIN_TIME, MAX_TIME)
    assert ready.audit.state("acme", as_of=MAX_TIME).paying


def test_money_sums_stay_inside_64_bits() -> None:
    engine = LifecycleEngine("memory://")
    set_up(engine)
    engine.contraction(customer="acme", at="2024-02-01T00:00:00Z", actor="sue",
                       team="success", mrr_delta=4899)
    engine.expansion(customer="acme", at="2024-02-02T00:00:00Z", actor="sue",
                     team="success", mrr_delta=MAX_MONEY - 1)  # the MRR is now the limit
    with pytest.raises(InvariantViolation) as err:
        engine.expansion(customer="acme", at="2024-02-03T00:00:00Z", actor="sue",
                         team="success", mrr_delta=1)
    assert err.value.problem.field == "mrr_delta"
    # payments: each within the money limit, their total within 64 bits
    pay = {**WHO, "customer": "acme", "team": "sales", "amount": MAX_MONEY,
           "currency": "EUR"}
    n = INT64_MAX // MAX_MONEY + 1  # the payment that would take the total past 2^63-1
    before = written(engine)
    with pytest.raises(InvalidInput) as many:
        engine.record_many(parse_command({"type": "payment", **pay}) for _ in range(n))
    assert [(p.line, p.field) for p in many.value.problems] == [(n, "amount")]
    assert written(engine) == before
    engine.close()


def test_handover_document_size_is_bounded(ready: LifecycleEngine) -> None:
    big = {"goals": [BIG] * 100, "risks": [BIG] * 100}
    assert len(orjson.dumps(big)) > DOCUMENT_BYTES > len(orjson.dumps({"goals": [BIG] * 100}))
    ready.record("handover_sent", **kwargs(command("handover_sent",
                                                   {"document": {"goals": [BIG] * 100}})))
    assert ready.history("acme")[-1].document["goals"] == [BIG] * 100
    with pytest.raises(InvalidInput, match=f"at most {DOCUMENT_BYTES} bytes"):
        ready.record("handover_sent", **kwargs(command("handover_sent", {
            "handover_id": "h-2", "document": big})))


# ------------------------------------------------------------------- ids


NFC, NFD = "caf\u00e9", "cafe\u0301"


def test_nfc_and_nfd_name_the_same_customer(engine: LifecycleEngine) -> None:
    engine.record("customer_registered", **{**kwargs(REGISTER), "customer": NFC})
    with pytest.raises(InvariantViolation, match="already registered"):
        engine.record("customer_registered", **{**kwargs(REGISTER), "customer": NFD})
    engine.check_in(customer=f" {NFD} ", at="2024-03-01T00:00:00Z", actor="sue",
                    team="success")
    assert [e.customer for e in engine.history(NFD)] == [NFC, NFC]
    assert engine.customer(f"  {NFD}\t").version == 2
    assert len(engine.audit.events(customer=NFD).events) == 2
    assert len(engine.audit.timeline(f" {NFD}")) == 2
    assert queries.customer_stage(engine.projections, NFD)["customer"] == NFC
    assert engine.metrics.stage_history(NFD)
    assert [h.customer for h in engine.health(NFD, as_of="2024-03-02")] == [NFC]


def test_queries_strip_ids_as_commands_do(shared: LifecycleEngine) -> None:
    assert len(shared.history(" acme ")) == 2
    assert shared.customer("acme\n").version == 2
    assert queries.handovers(shared.projections, customer=" acme ") == []
    assert len(shared.audit.events(customer=" acme ", actor=" ann ", team="sales ").events) == 1


@pytest.mark.parametrize("bad", ["acme\u200b", "\ufeffacme", "ac\x00me", "", "x" * 10**6])
def test_queries_refuse_ids_commands_refuse(shared: LifecycleEngine, bad: str) -> None:
    calls = [
        lambda: shared.history(bad), lambda: shared.customer(bad), lambda: shared.campaign(bad),
        lambda: shared.audit.timeline(bad), lambda: shared.audit.events(customer=bad),
        lambda: shared.audit.events(campaign=bad), lambda: shared.health(bad),
        lambda: queries.customer_stage(shared.projections, bad),
        lambda: shared.metrics.stage_history(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInput) as err:
            call()
        assert err.value.problems[0].field in ("customer", "campaign")
        assert len(str(err.value)) < 400


def test_look_alike_ids_stay_different_customers(shared: LifecycleEngine) -> None:
    with pytest.raises(UnknownCustomer):
        shared.history("асме")  # Cyrillic: a different id (look-alikes are not folded)


def test_the_import_routes_a_customer_by_its_normalised_id() -> None:
    nfc = orjson.dumps({**REGISTER, "customer": NFC})
    nfd = orjson.dumps({**REGISTER, "customer": f" {NFD} "})
    assert line_key(nfc) == line_key(nfd) == ("customer", NFC)
    assert line_key(orjson.dumps({**REGISTER, "customer": "acme\u200b"})) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_id_normalisation_is_idempotent_and_agrees_with_nfc(raw: str) -> None:
    try:
        key = normalise_id(raw)
    except ValueError:
        return
    assert key == unicodedata.normalize("NFC", raw.strip()) == normalise_id(key)
    assert 1 <= len(key) <= 200
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in key)
    assert customer_id(key) == customer_id(normalise_id(f" {key}\n"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_accepted_texts_hold_no_control_character(raw: str) -> None:
    for check, allowed in ((plain_text, ""), (free_text, "\t\n")):
        try:
            text = check(raw)
        except ValueError:
            assert any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp", "Cf")
                       and c not in allowed for c in raw)
            continue
        assert not any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed
                       for c in text)


# ----------------------------------------------------------------- errors


def test_long_values_are_cut_in_errors() -> None:
    line = orjson.dumps(command("check_in", {"notes": "x" * (50 * 2**20)}))
    with pytest.raises(InvalidInput) as err:
        parse_command(line, 7)
    shown = str(err.value.problems[0])
    assert shown.startswith("line 7: notes='xxx") and f"… ({50 * 2**20} characters)" in shown
    assert len(shown) < 2 * ECHO_CHARS + 60
    assert err.value.problems[0].value == "x" * (50 * 2**20)  # kept whole for programs
    assert str(FieldProblem("name", "N" * 2**20, "too long")) == (
        f"name={'N' * ECHO_CHARS!r}… (1048576 characters): too long")
    assert str(FieldProblem("goals", ["g"] * 5000, "r")).endswith("… (5000 items): r")
    assert "bits" in str(FieldProblem("amount", 10**6000, "r"))  # no 4300-digit ValueError


def test_unknown_keys_are_echoed_cut_too() -> None:
    for key in ("k" * 10**6, "a\x00b"):
        with pytest.raises(InvalidInput) as err:
            parse_command(orjson.dumps({**command("check_in", {}), key: 1}))
        shown = str(err.value)
        assert "\x00" not in shown and len(shown) < 300


# ------------------------------------------------------------- query times


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                  "1899-12-31", "2200-01-01", date(1, 1, 1),
                                  datetime(9999, 12, 31, 23, 59, 59,
                                           tzinfo=timezone(-timedelta(hours=14)))])
def test_query_times_outside_the_range_are_refused(shared: LifecycleEngine, when: Any) -> None:
    calls = {
        "since": lambda: shared.audit.events(since=when),
        "until": lambda: shared.audit.events(until=when),
        "as_of": lambda: shared.audit.state("acme", as_of=when),
        "as_known_at": lambda: shared.audit.state("acme", as_known_at=when),
    }
    for field, call in calls.items():
        with pytest.raises(InvalidInput) as err:
            call()
        assert [p.field for p in err.value.problems] == [field]
    for call in (lambda: shared.gaps(when), lambda: shared.health(as_of=when),
                 lambda: shared.metrics.cohorts(as_of=when)):
        with pytest.raises(InvalidInput) as err:
            call()
        assert [p.field for p in err.value.problems] == ["as_of"]
    with pytest.raises(InvalidInput) as err:
        shared.metrics.summary(when, "2024-01-01")
    assert [p.field for p in err.value.problems] == ["from"]


def test_handover_age_and_demo_dates_are_bounded(shared: LifecycleEngine) -> None:
    with pytest.raises(InvalidInput) as err:
        queries.parse_age("99999999999999d")
    assert err.value.problems[0].field == "older_than"
    assert queries.parse_age("3d") == timedelta(days=3)
    with pytest.raises(InvalidInput) as err:
        queries.handovers(shared.projections, older_than=timedelta(days=1),
                          now=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
    assert err.value.problems[0].field == "now"
    for until in ("0001-01-01", "9999-12-31"):
        with pytest.raises(InvalidInput) as err:
            parse_until(until)
        assert err.value.problems[0].field == "until"
    assert parse_until("2024-05-01") == date(2024, 5, 1)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def round_trip(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleEngine]:
    yield from module_store(request.param, tmp_path_factory)


OFFSETS = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(  # near the range's ends, and anywhere Python can represent
    st.datetimes(datetime(1899, 12, 30), datetime(1900, 1, 2), timezones=OFFSETS),
    st.datetimes(datetime(2199, 12, 30), datetime(2200, 1, 2), timezones=OFFSETS),
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=OFFSETS)))
def test_any_accepted_time_round_trips(round_trip: LifecycleEngine, when: datetime) -> None:
    """Accepted or refused by its UTC instant; an accepted one comes back equal, in UTC, and
    every read model takes it."""
    utc = when.astimezone(UTC)
    inside = MIN_TIME <= utc <= MAX_TIME
    try:
        round_trip.check_in(customer="acme", at=when.isoformat(), actor="sue",
                            team="success")
    except InvalidInput as exc:
        assert not inside and [p.field for p in exc.problems] == ["at"]
        return
    assert inside
    event = round_trip.history("acme")[-1]
    assert event.occurred_at == when and event.occurred_at.tzinfo is UTC
    up_to_date(round_trip)
    found = round_trip.audit.events(since=when, until=when).events
    assert found and found[0].occurred_at == utc
    round_trip.gaps(utc)
    round_trip.health(as_of=utc)


# ------------------------------------------------------------- JSON Lines


#: the JSON parser refuses a lone surrogate escape itself: the whole line is invalid JSON
IN_JSON = {"lone surrogate in a name": "command"}


def jsonl(*commands: dict[str, Any]) -> list[bytes]:
    """JSON lines as any program may write them (the standard library's encoder writes lone
    surrogates and integers of any size, which orjson refuses)."""
    return [json.dumps(c).encode() for c in commands]


@pytest.mark.parametrize(("case", "type_", "fields", "field"), HOSTILE, ids=IDS)
def test_import_refuses_with_a_field_error(shared: LifecycleEngine, case: str, type_: str,
                                           fields: dict[str, Any], field: str) -> None:
    good = {**REGISTER, "customer": "other"}
    with pytest.raises(InvalidInput) as err:
        shared.import_lines(jsonl(good, command(type_, fields)))
    assert [(p.line, p.field) for p in err.value.problems] == [(2, IN_JSON.get(case, field))]
    assert written(shared) == len(SETUP)


#: JSON the library cannot be given: escapes and numbers only a JSON line can hold
RAW = [
    ("NUL escape in a name", '"name": "Ac\\u0000me"', "name"),
    ("lone surrogate escape in a name", '"name": "Ac\\ud800me"', "command"),
    ("zero width space escape in the customer", '"customer": "newco\\u200b"', "customer"),
    ("mrr 2^63", '"mrr": 9223372036854775808', "mrr"),
    ("amount 10^20", '"amount": 100000000000000000000', "amount"),
    ("amount 10^20 as a float", '"amount": 1e20', "amount"),
]


def raw_line(fragment: str) -> bytes:
    field = fragment.split('"')[1]
    type_ = {"mrr": "purchase", "amount": "payment"}.get(field, "customer_registered")
    cmd = command(type_, {})
    cmd.pop(field, None)
    return jsonl(cmd)[0][:-1] + b", " + fragment.encode() + b"}"


@pytest.mark.parametrize(("case", "fragment", "field"), RAW, ids=[r[0] for r in RAW])
def test_import_refuses_raw_json(shared: LifecycleEngine, case: str, fragment: str,
                                 field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        shared.import_lines([raw_line(fragment)])
    assert [(p.line, p.field) for p in err.value.problems] == [(1, field)]
    assert written(shared) == len(SETUP)


# -------------------------------------------- the reproductions of issue 14


REPRODUCTIONS = [
    ("at year 1 at +14:00", raw_line('"at": "0001-01-01T00:00:00+14:00"'), "at"),
    ("at year 9999 at -14:00", raw_line('"at": "9999-12-31T23:59:59-14:00"'), "at"),
    ("mrr 2^63", raw_line('"mrr": 9223372036854775808'), "mrr"),
    ("amount 10^20", raw_line('"amount": 100000000000000000000'), "amount"),
    ("NUL in a name", raw_line('"name": "Ac\\u0000me"'), "name"),
]


@pytest.mark.parametrize(("case", "bad", "field"), REPRODUCTIONS,
                         ids=[r[0] for r in REPRODUCTIONS])
def test_reproductions_are_refused_and_read_models_still_work(
        shared: LifecycleEngine, case: str, bad: bytes, field: str) -> None:
    before = written(shared)
    with pytest.raises(InvalidInput) as err:
        shared.import_lines([bad])
    assert [(p.line, p.field) for p in err.value.problems] == [(1, field)]
    cmd = orjson.loads(bad)
    with pytest.raises(InvalidInput) as lib:  # and through the library
        shared.record(cmd.pop("type"), **cmd)
    assert [p.field for p in lib.value.problems] == [field]
    assert written(shared) == before
    read_models_work(shared)
    shared.projections.rebuild()
    read_models_work(shared)


# -------------------------------------------------------------------- CLI


def store_events(store: str) -> int:
    engine = LifecycleEngine(store)
    try:
        return written(engine)
    finally:
        engine.close()


def test_cli_import_refuses_the_reproductions(durable_store_url: str, tmp_path: Path) -> None:
    """Each reproduction: exit 2, one line naming the field, nothing written; the read models
    and the commands reading them work afterwards."""
    path = tmp_path / "setup.jsonl"
    path.write_bytes(b"\n".join(jsonl(*SETUP)) + b"\n")
    cli(durable_store_url, "import", str(path))
    for case, bad, field in REPRODUCTIONS:
        path = tmp_path / "bad.jsonl"
        path.write_bytes(bad + b"\n")
        proc = cli(durable_store_url, "import", str(path), check=False)
        assert proc.returncode == 2, (case, proc.stderr)
        assert proc.stderr.splitlines() == [
            proc.stderr.splitlines()[0], f"error: 1 problem in {path}; nothing was written"]
        assert proc.stderr.startswith(f"line 1: {field}="), (case, proc.stderr)
        assert store_events(durable_store_url) == len(SETUP)
    for args in (("stage",), ("gaps", "--as-of", "2024-06-01"),
                 ("health", "--as-of", "2024-06-01"), ("audit", "events")):
        assert cli(durable_store_url, *args).returncode == 0


def test_cli_import_reports_every_hostile_line(durable_store_url: str, tmp_path: Path) -> None:
    lines = [(jsonl(command(type_, fields))[0], IN_JSON.get(case, field))
             for case, type_, fields, field in HOSTILE]
    lines += [(raw_line(fragment), field) for _case, fragment, field in RAW]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join([*jsonl(*SETUP), *(b for b, _ in lines)]) + b"\n")
    proc = cli(durable_store_url, "import", str(path), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    shown = proc.stderr.splitlines()
    assert all(len(line) < 400 for line in shown)
    problems = f"{len(lines):,} problem{'s' if len(lines) != 1 else ''}"
    assert shown[-1] == f"error: {problems} in {path}; nothing was written"
    expected = [f"line {n}: {field}=" for n, (_bad, field) in enumerate(lines, start=3)]
    assert [s[:len(e)] for s, e in zip(shown, expected[:50], strict=False)] == expected[:50]
    assert store_events(durable_store_url) == 0


@pytest.mark.parametrize("args", [
    ("gaps", "--as-of", "0001-01-01T00:00:00+14:00"),
    ("health", "--as-of", "9999-12-31T23:59:59-14:00"),
    ("audit", "events", "--since", "1800-01-01"),
    ("audit", "events", "--customer", "acme\u200b"),
    ("audit", "customer", "ac\u202eme"),
    ("stage", "--customer", "\ufeffacme"),
    ("metrics", "--from", "2024-01-01", "--to", "2200-01-01"),
    ("handovers", "--older-than", "99999999999999d"),
])
def test_cli_options_refuse_hostile_values(tmp_path: Path, args: tuple[str, ...]) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    cli(store, "init")  # reading commands refuse a store that does not exist
    proc = cli(store, *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: invalid") and len(proc.stderr.splitlines()) == 1


def test_cli_options_normalise_ids(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    path = tmp_path / "ok.jsonl"
    path.write_bytes(b"\n".join(jsonl(*SETUP, {**REGISTER, "customer": NFC})) + b"\n")
    cli(store, "import", str(path))
    assert orjson.loads(cli(store, "stage", "--customer", " acme ", "--json").stdout)
    timeline = orjson.loads(cli(store, "audit", "customer", NFD, "--json").stdout)
    assert [e["type"] for e in timeline] == ["customer_registered"]
