"""Issue 27, item 1: gaps as work items — assigned, snoozed and dismissed by commands on the
customer, shown (or left out) by the gap list as of any time, on memory, SQLite and
PostgreSQL; ids that name the situation, hostile input refused with nothing written."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from cli_helpers import in_process
from gap_helpers import CFG, T0, History, day
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config, GapsConfig
from lifecycle_es.domain.gap_ids import gap_id, parse_gap_id
from lifecycle_es.errors import InvalidInput, InvariantViolation, UnknownCustomer
from lifecycle_es.privacy import ERASED
from lifecycle_es.reading.lifecycle_checks.gaps import Gap

WHO = {"actor": "sue", "team": "success"}


def ids(engine: LifecycleEngine, at: datetime, **options: Any) -> list[str]:
    return [g.id for g in engine.gaps(at, config=options.pop("config", CFG), **options)]


def one(engine: LifecycleEngine, at: datetime, gap: str, **options: Any) -> Gap:
    [found] = [g for g in engine.gaps(at, config=CFG, include_snoozed=True,
                                      include_dismissed=True, **options) if g.id == gap]
    return found


def stale(engine: LifecycleEngine, customer: str = "acme", handover: str = "h1",
          sent: float = 1) -> str:
    """Register ``customer`` (owned by sam) with a handover to success sent on day
    ``sent``; the id of its stale-handover gap (from day ``sent`` + 2)."""
    h = History(engine)
    try:
        engine.customer(customer)
    except UnknownCustomer:
        h.register(customer)
        h.cmd("owner_assigned", customer, 0, team="sales", owner="sam")
    h.cmd("handover_sent", customer, sent, team="sales", handover_id=handover,
          from_team="sales", to_team="success")
    return f"handover_stale:{customer}:{handover}"


def test_assign_snooze_dismiss_as_of_any_time(engine: LifecycleEngine) -> None:
    gap = stale(engine)
    assert ids(engine, day(4), kind="handover_stale") == [gap]
    engine.assign_gap(customer="acme", gap_id=gap, assignee="bo", at=day(4), **WHO)
    engine.snooze_gap(customer="acme", gap_id=gap, until="2024-01-10", reason="on leave",
                      at=day(5), **WHO)
    engine.dismiss_gap(customer="acme", gap_id=gap, reason="<b>done</b> by phone",
                       at=day(20), **WHO)

    g = one(engine, day(4, 1), gap)  # assigned, not snoozed yet
    assert (g.assignee, g.snoozed_until, g.dismissed) == ("bo", None, None)
    assert ids(engine, day(3, 1), assignee="bo") == []  # before the assignment
    assert ids(engine, day(4, 1), assignee="bo") == [gap]
    assert ids(engine, day(4, 1), assignee="ann") == []
    # snoozed from day 5 until 2024-01-10 00:00 UTC (day 9): hidden, unless asked for
    assert ids(engine, day(5), kind="handover_stale") == []
    assert ids(engine, day(9, -1), kind="handover_stale") == []
    assert one(engine, day(9, -1), gap).snoozed_until == date(2024, 1, 10)
    assert ids(engine, day(5), kind="handover_stale", include_snoozed=True) == [gap]
    # back on its date, still assigned
    assert ids(engine, day(9), kind="handover_stale") == [gap]
    assert one(engine, day(9), gap).snoozed_until is None
    assert ids(engine, day(19), assignee="bo") == [gap]
    # dismissed on day 20: gone for good, the reason kept as given
    assert ids(engine, day(20), kind="handover_stale") == []
    assert ids(engine, day(400), kind="handover_stale") == []
    assert ids(engine, day(20), kind="handover_stale", include_snoozed=True) == []
    g = one(engine, day(20), gap)
    assert (g.assignee, g.dismissed) == ("bo", "<b>done</b> by phone")
    assert g.as_dict(day(20))["dismissed"] == "<b>done</b> by phone"
    # events on the customer, so in its audit trail, with actor and time
    events = engine.history("acme")[-3:]
    assert [(e.TYPE, e.actor, e.gap_id) for e in events] == [
        ("gap_assigned", "sue", gap), ("gap_snoozed", "sue", gap),
        ("gap_dismissed", "sue", gap)]
    assert engine.customer("acme").state.last_event_at == day(1)  # not an activity


def test_a_new_situation_is_a_new_gap(engine: LifecycleEngine) -> None:
    h = History(engine)
    first = stale(engine)
    engine.dismiss_gap(customer="acme", gap_id=first, reason="not needed", at=day(4), **WHO)
    second = stale(engine, handover="h2", sent=10)
    assert ids(engine, day(13), kind="handover_stale") == [second]
    # the next renewal: the contract end names the situation
    h.register("r")
    h.buy("r", 1, "2024-03-01")
    at_risk = "renewal_at_risk:r:20240301"
    assert ids(engine, day(40), kind="renewal_at_risk") == [at_risk]
    engine.dismiss_gap(customer="r", gap_id=at_risk, reason="renewing anyway", at=day(40),
                       **WHO)
    assert ids(engine, day(41), kind="renewal_at_risk") == []
    h.cmd("renewal", "r", 45, new_contract_end="2024-04-01")
    assert ids(engine, day(75), kind="renewal_at_risk") == ["renewal_at_risk:r:20240401"]


def test_ids_name_the_situation_not_the_threshold(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("n")
    h.cmd("owner_assigned", "n", 0, team="success", owner="sue")
    h.cmd("nps_answer", "n", 3, score=2)
    h.register("p")
    h.buy("p", 1, "2024-03-01")
    stale(engine, customer="s")
    other = Config(gaps=GapsConfig(handover_sla_days=1, detractor_follow_up_days=3,
                                   renewal_window_days=45, renewal_check_in_days=10,
                                   stall_after_days={"awareness": 5, "purchase": 5}))
    a = {(g.kind, g.customer): g for g in engine.gaps(day(60), config=CFG)}
    b = {(g.kind, g.customer): g for g in engine.gaps(day(60), config=other)}
    shared = a.keys() & b.keys()
    assert {("detractor_ignored", "n"), ("handover_stale", "s"),
            ("renewal_at_risk", "p")} <= shared
    for key in shared:
        assert a[key].id == b[key].id, key
    for key in (("detractor_ignored", "n"), ("handover_stale", "s"), ("renewal_at_risk", "p")):
        assert a[key].since != b[key].since, key  # another threshold, the same id
    assert a["detractor_ignored", "n"].id == "detractor_ignored:n:20240104T000000Z"
    assert b["stalled", "p"].id == f"stalled:p:{day(1):%Y%m%dT%H%M%SZ}"


def test_ids_with_colons_and_percent_signs_round_trip(engine: LifecycleEngine) -> None:
    History(engine).register("a:b%3A")
    [g] = engine.gaps(day(1), "unowned", config=CFG)
    assert g.id == "unowned:a%3Ab%253A:20240101T000000Z"
    assert parse_gap_id(g.id).customer == "a:b%3A"
    engine.dismiss_gap(customer="a:b%3A", gap_id=g.id, reason="test account", at=day(1),
                       **WHO)
    assert engine.gaps(day(2), "unowned", config=CFG) == []
    ref = parse_gap_id("unknown_offer:c:20240101T000000Z:spring%3A24")
    assert (ref.customer, ref.subject) == ("c", ("20240101T000000Z", "spring:24"))
    assert ref.id == gap_id("unknown_offer", "c", "20240101T000000Z", "spring:24")


HUGE = "x" * 10_001


@pytest.mark.parametrize(("fields", "field"), [
    ({"gap_id": "nonsense:acme:20240101T000000Z"}, "gap_id"),
    ({"gap_id": "stalled:acme"}, "gap_id"),
    ({"gap_id": "stalled:acme:yesterday"}, "gap_id"),
    ({"gap_id": "stalled:acme:20241399T000000Z"}, "gap_id"),
    ({"gap_id": "renewal_at_risk:acme:20240101T000000Z"}, "gap_id"),
    ({"gap_id": "unknown_offer:acme:20240101T000000Z"}, "gap_id"),
    ({"gap_id": "stalled:ac\x00me:20240101T000000Z"}, "gap_id"),
    ({"gap_id": "stalled:acme%:20240101T000000Z"}, "gap_id"),
    ({"gap_id": "stalled:" + "a" * 5000 + ":20240101T000000Z"}, "gap_id"),
    ({"gap_id": 42}, "gap_id"),
    ({"until": "9999-01-01"}, "until"),
    ({"until": "0001-01-01"}, "until"),
    ({"until": "2024-01-10T00:00:00Z"}, "until"),
    ({"reason": HUGE}, "reason"),
    ({"reason": "a\x00b"}, "reason"),
    ({"reason": "   "}, "reason"),
    ({"team": "nowhere"}, "team"),
])
def test_hostile_input_names_the_field_and_writes_nothing(
        engine: LifecycleEngine, fields: dict[str, Any], field: str) -> None:
    gap = stale(engine)
    before = engine.customer("acme").version
    command = {"customer": "acme", "gap_id": gap, "until": "2024-01-10", "reason": "r",
               "at": day(4), **WHO, **fields}
    with pytest.raises(InvalidInput) as exc:
        engine.snooze_gap(**command)
    assert [p.field for p in exc.value.problems] == [field]
    assert engine.customer("acme").version == before


def test_rules_refuse_with_the_field_and_write_nothing(engine: LifecycleEngine) -> None:
    gap = stale(engine)
    stale(engine, customer="globex")
    before = engine.customer("acme").version
    refused = [
        ({"gap_id": "handover_stale:globex:h1"}, "gap_id", "is a gap of customer 'globex'"),
        ({"gap_id": "handover_stale:acme:never"}, "gap_id", "no handover 'never' was sent"),
        ({"until": "2024-01-05"}, "until", "must be after the day"),  # the day of `at`
    ]
    for change, field, reason in refused:
        with pytest.raises(InvariantViolation) as exc:
            engine.snooze_gap(**{"customer": "acme", "gap_id": gap, "until": "2024-01-10",
                                 "reason": "r", "at": day(4, 3600), **WHO, **change})
        assert exc.value.problem.field == field and reason in str(exc.value)
    with pytest.raises(UnknownCustomer):
        engine.dismiss_gap(customer="nobody", gap_id="unowned:nobody:20240101T000000Z",
                           reason="r", at=day(4), **WHO)
    assert engine.customer("acme").version == before
    with pytest.raises(InvalidInput) as bad:
        engine.assign_gap(customer="acme", gap_id=gap, assignee="", at=day(4), **WHO)
    assert bad.value.problems[0].field == "assignee"
    with pytest.raises(InvalidInput) as query:
        engine.gaps(day(4), assignee="  ")
    assert query.value.problems[0].field == "assignee"


def test_rebuild_void_and_erasure_keep_the_annotations_right(engine: LifecycleEngine) -> None:
    gap = stale(engine)
    kept = stale(engine, customer="globex")
    engine.assign_gap(customer="globex", gap_id=kept, assignee="bo", at=day(4), **WHO)
    engine.snooze_gap(customer="globex", gap_id=kept, until="2024-02-01", reason="later",
                      at=day(4), **WHO)
    version = engine.dismiss_gap(customer="acme", gap_id=gap, reason="by phone", at=day(4),
                                 **WHO)

    def answer() -> list[dict[str, Any]]:
        return [g.as_dict(day(10)) for g in engine.gaps(
            day(10), config=CFG, include_snoozed=True, include_dismissed=True)]

    before = answer()
    assert {(r["id"], r["assignee"], r["snoozed_until"], r["dismissed"]) for r in before
            if r["kind"] == "handover_stale"} == {
        (gap, None, None, "by phone"), (kept, "bo", date(2024, 2, 1), None)}
    engine.projections.rebuild(["gaps_facts"])
    assert answer() == before
    # voiding the dismissal brings the gap back
    engine.void_event(customer="acme", voided_version=version, reason="wrong gap",
                      at=day(5), **WHO)
    assert gap in ids(engine, day(10))
    # erasing the customer blanks the reason; the gap stays dismissed
    engine.dismiss_gap(customer="acme", gap_id=gap, reason="by phone", at=day(6), **WHO)
    engine.erase(customer="acme", reason="request 7", actor="dpo")
    assert gap not in ids(engine, day(10))
    assert one(engine, day(10), gap).dismissed == ERASED


def test_a_page_counts_only_the_shown_gaps(engine: LifecycleEngine) -> None:
    h = History(engine)
    for n in range(6):
        h.register(f"c{n}", at=n)
    everyone = ids(engine, day(400))
    for gap in everyone[:3]:
        engine.dismiss_gap(customer=parse_gap_id(gap).customer, gap_id=gap, reason="r",
                           at=day(10), **WHO)
    shown = ids(engine, day(400))
    assert shown == everyone[3:]
    assert [g.id for g in engine.gaps(day(400), config=CFG, limit=2, offset=1)] == shown[1:3]


# ------------------------------------------------------------------ property


#: steps on one customer: send a new handover, dismiss or snooze (for 1-9 days) the gap of
#: an earlier one, each a day apart
steps = st.lists(st.one_of(st.just(("send", 0, 0)),
                           st.tuples(st.just("dismiss"), st.integers(0, 5), st.just(0)),
                           st.tuples(st.just("snooze"), st.integers(0, 5),
                                     st.integers(1, 9))), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps, later=st.integers(0, 12))
def test_dismissed_stays_dismissed_new_handovers_open_new_gaps_snoozes_come_back(
        plan: list[tuple[str, int, int]], later: int) -> None:
    engine = LifecycleEngine("memory://")
    h = History(engine)
    h.register("c")
    h.cmd("owner_assigned", "c", 0, team="sales", owner="sam")
    sent: list[int] = []  # the day each handover was sent
    work: list[tuple[int, str, int, int]] = []  # (day, action, handover, until day)
    for n, (action, which, length) in enumerate(plan, start=1):
        if action == "send":
            stale(engine, customer="c", handover=f"h{len(sent)}", sent=n)
            sent.append(n)
        elif sent:
            k = which % len(sent)
            gap = f"handover_stale:c:h{k}"
            if action == "dismiss":
                engine.dismiss_gap(customer="c", gap_id=gap, reason="r", at=day(n), **WHO)
            else:
                engine.snooze_gap(customer="c", gap_id=gap, until=day(n + length).date(),
                                  reason="r", at=day(n), **WHO)
            work.append((n, action, k, n + length))
    for q in [day(x, 1) for x in range(len(plan) + later + 3)]:
        expected = []
        for k, s in enumerate(sent):
            if q <= day(s + 2):  # not stale yet (2-day SLA)
                continue
            done = [w for w in work if w[2] == k and day(w[0]) <= q]
            dismissed = any(w[1] == "dismiss" for w in done)
            snoozes = [w for w in done if w[1] == "snooze"]
            snoozed = bool(snoozes) and q < day(snoozes[-1][3])
            if not dismissed and not snoozed:
                expected.append(f"handover_stale:c:h{k}")
        assert sorted(ids(engine, q, kind="handover_stale")) == sorted(expected), q
    engine.close()


# ------------------------------------------------------------------ CLI and import


def test_cli_lists_and_works_on_gaps(durable_store_url: str, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    engine = LifecycleEngine(durable_store_url)
    gap = stale(engine)
    other = stale(engine, customer="globex")
    engine.close()

    def run(*args: str) -> tuple[int, str, str]:
        return in_process(capsys, monkeypatch, durable_store_url, *args)

    def listed(*args: str) -> list[dict[str, Any]]:
        code, out, err = run("gaps", "--as-of", "2024-01-20", "--kind", "handover-stale",
                             "--json", *args)
        assert code == 0, err
        return list(json.loads(out))

    assert [g["id"] for g in listed()] == [gap, other]
    assert listed("--owner", "sam") == listed()  # the customers' owner (no receiver named)
    assert listed("--owner", "nobody") == []
    code, out, _ = run("gaps", "assign", gap, "--to", "bo", "--team", "success",
                       "--actor", "sue", "--at", "2024-01-05T10:00:00Z")
    assert code == 0 and out.startswith(f"assigned gap {gap} to bo (event 4 of customer")
    code, out, _ = run("gaps", "snooze", other, "--until", "2024-02-01", "--reason",
                       "customer on leave", "--team", "success", "--at",
                       "2024-01-05T10:00:00Z", "--json")
    assert code == 0 and json.loads(out)["version"] == 4
    assert [(g["id"], g["assignee"]) for g in listed("--assignee", "bo")] == [(gap, "bo")]
    assert [g["id"] for g in listed()] == [gap]
    assert [(g["id"], g["snoozed_until"]) for g in listed("--include-snoozed")] == [
        (gap, None), (other, "2024-02-01")]
    code, _, _ = run("gaps", "dismiss", gap, "--reason", "[b]markup[/b]", "--team",
                     "success", "--at", "2024-01-06T10:00:00Z")
    assert code == 0 and listed() == []
    [shown] = listed("--include-dismissed")
    assert (shown["id"], shown["dismissed"]) == (gap, "[b]markup[/b]")
    code, out, _ = run("gaps", "--as-of", "2024-01-20", "--include-dismissed", "--csv")
    assert code == 0 and "[b]markup[/b]" in out and out.splitlines()[0].endswith(
        "id,assignee,snoozed_until,dismissed")
    for args, message in [
        (("assign", "stalled:nobody:20240101T000000Z", "--to", "bo", "--team", "success"),
         "customer='nobody': no such customer is registered"),
        (("assign", "whatever", "--to", "bo", "--team", "success"), "gap_id='whatever'"),
        (("snooze", gap, "--until", "9999-12-31", "--reason", "r", "--team", "success"),
         "until='9999-12-31'"),
        (("dismiss", gap, "--reason", "r", "--team", "nowhere"), "team='nowhere'"),
        (("dismiss", other, "--reason", "r", "--team", "success", "--at", "yesterday"),
         "at='yesterday'"),
    ]:
        code, out, err = run("gaps", *args)
        assert (code, out) == (2, "") and message in err and err.count("\n") == 1, err
    code, out, _ = run("gaps", "--as-of", "2024-01-20")  # the table, as before
    assert code == 0 and "gaps as of 2024-01-20 00:00 UTC" in out


def test_import_records_gap_work_and_refuses_bad_lines(engine: LifecycleEngine) -> None:
    gap = stale(engine)
    line = {"type": "gap_dismissed", "customer": "acme", "gap_id": gap, "reason": "by phone",
            "at": "2024-01-05T10:00:00Z", **WHO}
    before = engine.customer("acme").version
    bad = [json.dumps({**line, "gap_id": "stalled:acme:not-a-time"}),
           json.dumps({**line, "type": "gap_snoozed", "until": "0001-01-01"}),
           json.dumps({**line, "gap_id": "handover_stale:other:h1"})]
    with pytest.raises(InvalidInput) as exc:
        engine.import_lines([json.dumps(line), *bad])
    assert [(p.line, p.field) for p in exc.value.problems] == [
        (2, "gap_id"), (3, "until"), (4, "gap_id")]
    assert engine.customer("acme").version == before
    assigned = {k: v for k, v in line.items() if k != "reason"} | {
        "type": "gap_assigned", "assignee": "bo"}
    result = engine.import_lines([json.dumps(line), json.dumps(assigned)])
    assert result.by_type == {"gap_dismissed": 1, "gap_assigned": 1}
    assert one(engine, day(10), gap).dismissed == "by phone"
    assert one(engine, day(10), gap).assignee == "bo"


def test_the_report_shows_only_open_gaps(engine: LifecycleEngine) -> None:
    from lifecycle_es.report import report_data

    gap = stale(engine)
    snoozed = stale(engine, customer="globex")
    engine.snooze_gap(customer="globex", gap_id=snoozed, until="2024-03-01", reason="r",
                      at=day(4), **WHO)

    def shown() -> set[str]:
        rows = report_data(engine, T0, day(10), day(10), config=CFG)["gaps"]["rows"]
        return {r["id"] for r in rows if r["kind"] == "handover_stale"}

    assert shown() == {gap}
    engine.dismiss_gap(customer="acme", gap_id=gap, reason="r", at=day(5), **WHO)
    assert shown() == set()
