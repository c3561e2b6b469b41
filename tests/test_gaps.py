"""Gap checks on hand-built histories: exact gaps, non-gaps just inside the thresholds, and
answers "as of" past times — on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gap_helpers import CFG, T0, History, day, gaps, only

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config, GapsConfig
from lifecycle_es.errors import InvalidInput

S = 1  # one second


def test_unowned(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("u1")  # never owned
    h.register("u2")
    h.cmd("owner_assigned", "u2", 1, team="marketing", owner="mia")
    h.register("u3")
    h.cmd("owner_assigned", "u3", 1, team="marketing", owner="mia")
    h.cmd("owner_released", "u3", 5, team="marketing", reason="left")
    h.register("u4")
    h.cmd("handover_sent", "u4", 1, team="marketing", handover_id="h", from_team="marketing",
          to_team="sales")
    h.cmd("handover_accepted", "u4", 2, team="sales", handover_id="h")  # sam owns it now
    h.register("u5")  # unowned while buying, then churned: no owner needed
    h.buy("u5", 2, "2024-12-31")
    h.cmd("churned", "u5", 4, reason="budget")

    assert gaps(engine, day(10), "unowned") == [("u1", T0), ("u3", day(5))]
    assert gaps(engine, day(3), "unowned") == [("u1", T0), ("u5", T0)]
    g = only(engine, day(3), "unowned", "u5")
    assert (g.team, g.owner, g.stage) == ("sales", None, "purchase")
    assert only(engine, day(10), "unowned", "u1").team == "marketing"
    # churned customers may be unowned unless configured otherwise
    strict = Config(gaps=GapsConfig(unowned_exclude_stages=[]))
    assert gaps(engine, day(10), "unowned", strict) == [("u1", T0), ("u5", T0), ("u3", day(5))]


def test_handover_stale(engine: LifecycleEngine) -> None:
    h = History(engine)
    for c in ("h1", "h2", "h3"):
        h.register(c)
        h.cmd("owner_assigned", c, 0, team="sales", owner="sam")
    h.cmd("handover_sent", "h1", 1, team="sales", handover_id="x1", from_team="sales",
          to_team="success", to_person="sue")
    h.cmd("handover_sent", "h2", 1, team="sales", handover_id="x2", from_team="sales",
          to_team="success")
    h.cmd("handover_accepted", "h2", 4, team="success", handover_id="x2")
    h.cmd("handover_sent", "h3", 1, team="sales", handover_id="x3", from_team="sales",
          to_team="support")
    h.cmd("handover_rejected", "h3", 2, team="support", handover_id="x3", reason="not ours")

    assert gaps(engine, day(3), "handover_stale") == []  # exactly the 2-day SLA: not yet
    assert gaps(engine, day(3, S), "handover_stale") == [("h1", day(3)), ("h2", day(3))]
    g = only(engine, day(3, S), "handover_stale", "h1")
    assert (g.team, g.owner, g.ref) == ("success", "sue", "x1")
    # sent to the team, not a person: the customer's owner answers for it
    assert only(engine, day(3, S), "handover_stale", "h2").owner == "sam"
    assert gaps(engine, day(5), "handover_stale") == [("h1", day(3))]
    one_day = Config(gaps=GapsConfig(handover_sla_days=1))
    assert gaps(engine, day(2, S), "handover_stale", one_day) == [("h1", day(2)),
                                                                    ("h2", day(2))]


def test_renewal_at_risk(engine: LifecycleEngine) -> None:
    h = History(engine)
    for c in ("r1", "r2", "r3", "r4"):
        h.register(c)
    h.buy("r1", 0, "2024-03-01")  # never checked in
    h.buy("r2", 0, "2024-03-01")
    h.cmd("check_in", "r2", datetime(2024, 1, 10, 12, tzinfo=UTC))
    h.buy("r3", 0, "2025-01-01")  # far from renewal
    h.buy("r4", 0, "2024-03-01")
    h.cmd("churned", "r4", 2, reason="gone")  # not paying: nothing to renew

    kind = "renewal_at_risk"
    # 2024-01-30 + 30 days = 2024-02-29: the contract ends one day later
    assert gaps(engine, datetime(2024, 1, 30, 12, tzinfo=UTC), kind) == []
    window = datetime(2024, 1, 31, tzinfo=UTC)  # contract end - 30 days
    assert gaps(engine, datetime(2024, 1, 31, 12, tzinfo=UTC), kind) == [("r1", window)]
    # r2's check-in exactly 30 days ago still counts; one second later it no longer does
    checked = datetime(2024, 2, 9, 12, tzinfo=UTC)
    assert gaps(engine, checked, kind) == [("r1", window)]
    assert gaps(engine, datetime(2024, 2, 9, 12, 0, 1, tzinfo=UTC), kind) == [
        ("r1", window), ("r2", checked)]
    g = only(engine, checked, kind, "r1")
    assert (g.team, g.stage) == ("sales", "purchase")
    assert g.detail == "contract ends 2024-03-01; never checked in"
    # a renewal moves the contract end away
    h.cmd("renewal", "r1", datetime(2024, 2, 15, tzinfo=UTC), team="sales",
          new_contract_end="2025-03-01")
    assert gaps(engine, datetime(2024, 2, 20, tzinfo=UTC), kind) == [("r2", checked)]


def test_detractor_ignored(engine: LifecycleEngine) -> None:
    h = History(engine)
    for c in ("d1", "d2", "d3", "d4", "d5"):
        h.register(c)
    h.cmd("nps_answer", "d1", 0, score=6)
    h.cmd("nps_answer", "d2", 0, score=3)
    h.cmd("check_in", "d2", 3)
    h.cmd("nps_answer", "d3", 0, score=7)  # passive
    h.cmd("nps_answer", "d4", 0, score=2)
    h.cmd("check_in", "d4", 10)  # late, but followed up
    h.cmd("nps_answer", "d5", 0, score=2)
    h.cmd("nps_answer", "d5", 2, score=9)  # the latest answer counts

    kind = "detractor_ignored"
    assert gaps(engine, day(7), kind) == []
    assert gaps(engine, day(7, S), kind) == [("d1", day(7)), ("d4", day(7))]
    assert gaps(engine, day(11), kind) == [("d1", day(7))]
    assert only(engine, day(11), kind, "d1").detail == "NPS 6 on 2024-01-01, no check-in since"


def test_promoter_not_asked(engine: LifecycleEngine) -> None:
    h = History(engine)
    for c in ("p1", "p2", "p3", "p4"):
        h.register(c)
    h.cmd("nps_answer", "p1", 0, score=9)
    h.cmd("nps_answer", "p2", 0, score=10)
    h.cmd("advocacy_requested", "p2", 5, team="marketing", kind="case_study")
    h.cmd("nps_answer", "p3", 0, score=8)
    h.cmd("nps_answer", "p4", 0, score=10)
    h.cmd("advocacy_given", "p4", 40, kind="review")

    kind = "promoter_not_asked"
    assert gaps(engine, day(30), kind) == []
    assert gaps(engine, day(30, S), kind) == [("p1", day(30)), ("p4", day(30))]
    assert gaps(engine, day(41), kind) == [("p1", day(30))]


def test_stalled(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("s1")  # awareness: 90 days in the classic model
    h.register("s2")
    h.cmd("stage_changed", "s2", 10, team="sales", to_stage="consideration")  # 60 days
    h.register("s3", stage="retention")  # no limit

    kind = "stalled"
    assert gaps(engine, day(70), kind) == []
    assert gaps(engine, day(70, S), kind) == [("s2", day(70))]
    assert gaps(engine, day(90, S), kind) == [("s2", day(70)), ("s1", day(90))]
    g = only(engine, day(91), kind, "s1")
    assert (g.team, g.stage) == ("marketing", "awareness")
    override = Config(gaps=GapsConfig(stall_after_days={"awareness": 10, "consideration": None}))
    assert gaps(engine, day(91), kind, override) == [("s1", day(10))]


def test_unknown_or_expired_offer(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.campaign("c1", 0, "2024-01-05", "2024-01-20")
    h.campaign("c2", 0, "2024-01-01", "2024-03-31")
    engine.record("campaign_ended", campaign="c2", at=day(15), actor="mia", team="marketing",
                  reason="budget")
    h.campaign("c3", 30, "2024-01-01", "2024-12-31")  # announced after it was quoted
    h.register("o")
    quotes = [(10, "c1"), (25, "c1"), (1, "nope"), (2, "c1"), (14, "c2"), (20, "c2"),
              (19.95, "c1"), (5, "c3")]
    for at, campaign in sorted(quotes):
        h.cmd("touchpoint", "o", at, team="sales", channel="call", campaign_id=campaign)

    kind = "unknown_offer"
    assert gaps(engine, day(29), kind) == [("o", day(1)), ("o", day(2)), ("o", day(5)),
                                           ("o", day(20)), ("o", day(25))]
    found = engine.gaps(day(29), kind, config=CFG)
    assert [g.ref for g in found] == ["nope", "c1", "c3", "c2", "c1"]
    assert {(g.team, g.owner) for g in found} == {("sales", "sam")}
    assert "unknown to the registry" in found[0].detail
    assert "not running then (runs 2024-01-05..2024-01-20)" in found[1].detail
    # once the registry knows c3 (it ran all year) the quote of day 5 is fine
    assert [g.ref for g in engine.gaps(day(31), kind, config=CFG)] == ["nope", "c1", "c2",
                                                                       "c1"]
    # quotes older than the lookback (365 days by default) are not re-checked
    assert gaps(engine, day(389), kind) == [("o", day(25))]
    assert gaps(engine, day(390), kind) == []


def test_past_answers_do_not_change(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("a")
    h.cmd("nps_answer", "a", 1, score=2)
    h.register("b")
    h.cmd("handover_sent", "b", 1, team="marketing", handover_id="x", from_team="marketing",
          to_team="sales")
    before = [g.as_dict(day(20)) for g in engine.gaps(day(20), config=CFG)]
    assert {g["kind"] for g in before} == {"unowned", "detractor_ignored", "handover_stale"}
    # later events close the gaps now, but not as of day 20
    h.cmd("check_in", "a", 25)
    h.cmd("owner_assigned", "a", 25, owner="sue")
    h.cmd("handover_accepted", "b", 26, team="sales", handover_id="x")
    assert [g.as_dict(day(20)) for g in engine.gaps(day(20), config=CFG)] == before
    assert gaps(engine, day(27)) == []
    # text and dates work as as_of too (a date is midnight UTC)
    assert [g.as_dict(day(20)) for g in engine.gaps("2024-01-21", config=CFG)] == before


def test_void_reopens_a_gap(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("v")
    h.cmd("nps_answer", "v", 0, score=1)
    h.cmd("check_in", "v", 2)  # version 3
    assert gaps(engine, day(10), "detractor_ignored") == []
    h.cmd("event_voided", "v", 11, voided_version=3, reason="logged on the wrong customer")
    assert gaps(engine, day(10), "detractor_ignored") == [("v", day(7))]


def test_filters_and_bad_input(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("f")
    h.cmd("nps_answer", "f", 0, score=0)
    assert {g.kind for g in engine.gaps(day(10), config=CFG)} == {"unowned",
                                                                  "detractor_ignored"}
    assert [g.kind for g in engine.gaps(day(10), "detractor-ignored", config=CFG)] == [
        "detractor_ignored"]
    assert [g.kind for g in engine.gaps(day(10), team="marketing", config=CFG)] == [
        "unowned", "detractor_ignored"]
    assert engine.gaps(day(10), team="sales", config=CFG) == []
    with pytest.raises(InvalidInput, match="kind='lost'"):
        engine.gaps(day(10), "lost")
    with pytest.raises(InvalidInput, match="team='legal'"):
        engine.gaps(day(10), team="legal")
    with pytest.raises(InvalidInput, match="as_of='yesterday'"):
        engine.gaps("yesterday")


def test_rebuild_gives_the_same_answers(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.campaign("c", 0, "2024-01-01", "2024-01-10")
    for n, c in enumerate(("a", "b", "c")):
        h.register(c)
        h.buy(c, 1 + n, "2024-02-15", mrr=100 * (n + 1))
        h.cmd("nps_answer", c, 3, score=3 * n)
        h.cmd("touchpoint", c, 12, team="sales", channel="call", campaign_id="c")
    h.cmd("churned", "a", 20, reason="price")
    h.cmd("won_back", "a", 30, team="sales", mrr=50)
    before = {t: engine.gaps(day(t), config=CFG) for t in (5, 25, 40)}
    health = engine.health(as_of=day(40), config=CFG)
    engine.projections.rebuild(["gaps_facts"])
    assert {t: engine.gaps(day(t), config=CFG) for t in (5, 25, 40)} == before
    assert engine.health(as_of=day(40), config=CFG) == health
    # the won-back customer kept its currency and contract end
    assert only(engine, day(40), "renewal_at_risk", "a").detail.startswith(
        "contract ends 2024-02-15")


def test_the_gaps_of_one_customer_are_theirs_of_all(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.campaign("c", 0, "2024-01-01", "2024-01-10")
    for c in ("a", "b"):
        h.register(c)
    h.cmd("nps_answer", "b", 1, score=0)
    everyone = engine.gaps(day(40), config=CFG)
    for c in ("a", "b"):
        assert engine.gaps(day(40), config=CFG, customer=c) == [
            g for g in everyone if g.customer == c]
        assert engine.gaps(day(40), config=CFG, customer=f" {c} ") == \
            engine.gaps(day(40), config=CFG, customer=c)  # normalised as the commands do
    assert engine.gaps(day(40), config=CFG, customer="nobody") == []
    for bad in ("", "a\x00b", "x" * 100_000, 12):
        with pytest.raises(InvalidInput, match="customer="):
            engine.gaps(day(40), customer=bad)  # type: ignore[arg-type]
