"""Small rules tested exactly at their boundaries, with hand-computed expected figures.

Each test here was written against a mutation of the rule (``<`` made ``<=``, 9 made 8, ...)
that the rest of the suite let pass; each one fails on its mutation. The rules are those of
docs/metrics.md and docs/commands.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction as F

import pytest
from gap_helpers import History, day, gaps
from metrics_history import WHO, _t, buy, move, nps, pay, register

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config
from lifecycle_es.errors import InvalidInput, InvariantViolation

# ------------------------------------------------------------- [FROM, TO) and churn

JAN, FEB = "2024-01-01", "2024-02-01"  # the period [JAN, FEB)


def churn(e: LifecycleEngine, c: str, at: str) -> None:
    e.churn(customer=c, at=_t(at), **WHO)


@pytest.fixture
def boundary_churns(engine: LifecycleEngine) -> LifecycleEngine:
    """Five EUR 1000 customers bought on 2023-12-01 00:00; four of them churn around
    January 2024: inside it, one microsecond before its end, exactly at its end (TO) and
    exactly at its start (FROM)."""
    for c in ("stays", "inside", "before_to", "at_to", "at_from"):
        register(engine, c, "2023-11-01")
        buy(engine, c, "2023-12-01", 1000)
    churn(engine, "inside", "2024-01-15")
    churn(engine, "before_to", "2024-01-31T23:59:59.999999Z")
    churn(engine, "at_to", "2024-02-01T00:00:00Z")
    churn(engine, "at_from", "2024-01-01T00:00:00Z")
    return engine


def test_a_churn_exactly_at_to_is_not_a_churn_of_the_period(
    boundary_churns: LifecycleEngine,
) -> None:
    e = boundary_churns
    s = e.metrics.summary(JAN, FEB)
    # S = paying at 01-01 00:00: stays, inside, before_to, at_to (at_from's churn at exactly
    # 01-01 ended its paying then) = 4. E = paying at 02-01 00:00: stays only (at_to's churn
    # at exactly 02-01 ends its paying then) = 1. N = 0, retained 1.
    assert e.metrics.paying_at(JAN) == {"stays", "inside", "before_to", "at_to"}
    assert e.metrics.paying_at(FEB) == {"stays"}
    assert (s.paying_at_start, s.paying_at_end, s.new, s.retained) == (4, 1, 0, 1)
    assert s.retention_rate == F(1, 4)  # (E - N) / S = (1 - 0) / 4
    # churns in [01-01, 02-01) of customers of S: inside and before_to; at_to's churn at
    # exactly TO is outside the period
    assert s.churned == 2
    assert s.churn_rate == F(2, 4)
    # MRR at TO includes the churn at TO: EUR 4000 at FROM -> 1000 at TO (stays)
    [eur] = s.revenue
    assert (eur.mrr_start, eur.mrr_end, eur.mrr_retained) == (4000, 1000, 1000)
    assert (eur.grr, eur.nrr) == (F(1, 4), F(1, 4))


def test_a_churn_exactly_at_from_ends_paying_at_from(boundary_churns: LifecycleEngine) -> None:
    e = boundary_churns
    # "Paying at t": a churn at exactly t ends it. at_from churned at exactly 2024-01-01, so
    # it is not in January's S, not in E, and (not being in S) not in January's churn count.
    assert "at_from" not in e.metrics.paying_at(JAN)
    assert e.metrics.summary(JAN, FEB).churned == 2  # inside, before_to (as above)
    # December [12-01, 01-01): a purchase at exactly FROM counts, so all five are in S;
    # at_from's churn is at December's TO: not paying at TO (E = 4), not churned in December
    dec = e.metrics.summary("2023-12-01", JAN)
    assert (dec.paying_at_start, dec.paying_at_end, dec.new, dec.churned) == (5, 4, 0, 0)
    assert dec.retention_rate == F(4, 5)
    assert dec.churn_rate == 0


def test_a_churn_exactly_at_from_counts_for_a_customer_of_s(engine: LifecycleEngine) -> None:
    # The one way a churn at FROM meets S: won back at that same instant, so paying at FROM.
    # The churn is in [FROM, TO), so it counts (like c07 of docs/metrics.md, won back later).
    register(engine, "flip", "2023-11-01")
    buy(engine, "flip", "2023-12-01", 1000)
    churn(engine, "flip", "2024-01-01T00:00:00Z")
    engine.win_back(customer="flip", mrr=1000, at=_t("2024-01-01T00:00:00Z"), **WHO)
    s = engine.metrics.summary(JAN, FEB)
    assert (s.paying_at_start, s.paying_at_end, s.churned) == (1, 1, 1)
    assert (s.retention_rate, s.churn_rate) == (1, 1)


# ------------------------------------------------------ a contraction and the MRR


@pytest.fixture
def paying() -> Iterator[LifecycleEngine]:
    """A memory engine with three customers paying EUR 1000 a month (the rule is in the
    domain: no store is involved)."""
    e = LifecycleEngine("memory://")
    for c in ("less", "equal", "more"):
        register(e, c, "2024-01-01")
        buy(e, c, "2024-01-02", 1000)
    yield e
    e.close()


def contract(e: LifecycleEngine, c: str, delta: int) -> int:
    return e.contraction(customer=c, mrr_delta=delta, at=_t("2024-02-01"), **WHO)


def test_a_contraction_up_to_the_whole_mrr_is_accepted_and_one_more_is_refused(
    paying: LifecycleEngine,
) -> None:
    # "a contraction is not larger than the current MRR" (docs/commands.md)
    contract(paying, "less", 999)
    assert paying.customer("less").state.mrr == 1
    contract(paying, "equal", 1000)  # the whole MRR: accepted, MRR 0, still paying
    state = paying.customer("equal").state
    assert (state.mrr, state.paying) == (0, True)
    assert paying.metrics.summary("2024-01-15", "2024-03-01").revenue[0].mrr_end == 1 + 0 + 1000
    before = len(paying.history("more"))
    with pytest.raises(InvariantViolation) as info:
        contract(paying, "more", 1001)
    assert (info.value.problem.field, info.value.problem.value) == ("mrr_delta", 1001)
    assert "larger than the MRR 1000" in str(info.value)
    assert len(paying.history("more")) == before  # nothing written
    assert paying.customer("more").state.mrr == 1000
    with pytest.raises(InvariantViolation, match="larger than the MRR 0"):
        contract(paying, "equal", 1)  # at MRR 0 no contraction is left


# ------------------------------------------------ NPS thresholds and payments at TO


@pytest.fixture
def answers_and_payments(engine: LifecycleEngine) -> LifecycleEngine:
    """NPS answers 6, 7, 8, 9 in January 2024 (the 6 exactly at FROM, the 9 a microsecond
    before TO) and a 0 exactly at TO; EUR 1000 payments on 12-01, a microsecond before TO and
    exactly at TO."""
    for c, score, at in (("n6", 6, "2024-01-01T00:00:00Z"), ("n7", 7, "2024-01-10"),
                         ("n8", 8, "2024-01-20"), ("n9", 9, "2024-01-31T23:59:59.999999Z"),
                         ("n0", 0, "2024-02-01T00:00:00Z")):
        register(engine, c, "2023-12-01")
        nps(engine, c, at, score)
    register(engine, "payer", "2023-11-01")
    buy(engine, "payer", "2023-12-01", 1000)
    pay(engine, "payer", 1000, "2023-12-01", "2024-01-31T23:59:59.999999Z",
        "2024-02-01T00:00:00Z")
    return engine


def test_nps_thresholds_six_is_a_detractor_seven_and_eight_passives_nine_a_promoter(
    answers_and_payments: LifecycleEngine,
) -> None:
    n = answers_and_payments.metrics.summary(JAN, FEB).nps
    # in [01-01, 02-01): 6 (at FROM), 7, 8, 9; the 0 at exactly TO is February's
    # promoters (9-10): 9; passives: 7, 8; detractors (0-6): 6 -> 100 x (1 - 1) / 4 = 0
    assert (n.answers, n.promoters, n.passives, n.detractors) == (4, 1, 2, 1)
    assert n.score == 0
    feb = answers_and_payments.metrics.summary(FEB, "2024-03-01").nps
    assert (feb.answers, feb.detractors, feb.score) == (1, 1, -100)


def test_historical_clv_counts_payments_before_to_only(
    answers_and_payments: LifecycleEngine,
) -> None:
    [clv] = answers_and_payments.metrics.summary(JAN, FEB).historical_clv
    # payments before 02-01 00:00: 12-01 and 01-31 23:59:59.999999 -> 2000; the one at
    # exactly TO is not before TO
    assert (clv.currency, clv.customers, clv.total, clv.mean, clv.median) == (
        "EUR", 1, 2000, 2000, 2000)


# ------------------------------------- stage entries and stays at the period bounds


@pytest.fixture
def stage_bounds(engine: LifecycleEngine) -> LifecycleEngine:
    """Stage entries around January 2024:

    from  registered exactly 01-01 00:00 and moved to consideration at that same instant
    mid   registered 2023-12-01, consideration 01-11 (41 days later)
    edge  registered 01-10, consideration exactly 02-01 00:00 (TO)
    late  registered exactly 02-01 00:00 (TO)
    """
    register(engine, "from", "2024-01-01T00:00:00Z")
    move(engine, "from", "2024-01-01T00:00:00Z", "consideration")
    register(engine, "mid", "2023-12-01")
    move(engine, "mid", "2024-01-11", "consideration")
    register(engine, "edge", "2024-01-10")
    move(engine, "edge", "2024-02-01T00:00:00Z", "consideration")
    register(engine, "late", "2024-02-01T00:00:00Z")
    return engine


def test_funnel_counts_entries_in_from_to_and_zero_day_steps(
    stage_bounds: LifecycleEngine,
) -> None:
    f = stage_bounds.metrics.funnel(JAN, FEB)
    # entered some stage in [01-01, 02-01): from (both entries at FROM), mid (consideration),
    # edge (awareness; its consideration at TO is February's). late entered at TO: not in.
    # furthest in the period: from co, mid co, edge aw
    assert f.customers == 3
    aw, co, pu = f.stages[:3]
    assert (aw.reached, aw.entered, co.reached, co.entered, pu.reached) == (3, 3, 2, 2, 0)
    assert co.conversion_to_next == 0 and aw.conversion_to_next == F(2, 3)
    # awareness -> consideration: from 0 days (same instant: a step, not a backward move),
    # mid 41 days -> median 20.5
    assert (aw.median_days_to_next, aw.to_next_samples) == (F(41, 2), 2)


def test_time_in_stage_counts_stays_ended_in_from_to_and_open_at_as_of(
    stage_bounds: LifecycleEngine,
) -> None:
    t = {s.stage: s for s in stage_bounds.metrics.time_in_stage(JAN, FEB).stages}
    aw, co = t["awareness"], t["consideration"]
    # awareness stays that ended in [01-01, 02-01): from's (0 days, ended exactly at FROM),
    # mid's (12-01 -> 01-11: 41 days); edge's ended exactly at TO: February's.
    # median (0 + 41) / 2; p90 = rank ceil(0.9 x 2) = 2 -> 41
    assert (aw.completed, aw.median_days, aw.p90_days) == (2, F(41, 2), 41)
    # open at AS_OF = TO: late (entered exactly then: 0 days); edge's awareness ended at
    # exactly AS_OF, so it is not open
    assert (aw.open, aw.open_median_days) == (1, 0)
    # consideration open at TO: from 31 days, mid 21, edge 0 -> median 21, p90 rank 3 -> 31
    assert (co.completed, co.open, co.open_median_days, co.open_p90_days) == (0, 3, 21, 31)


def test_a_period_must_not_be_empty_and_its_length_in_months() -> None:
    e = LifecycleEngine("memory://")
    try:
        with pytest.raises(InvalidInput, match="to="):
            e.metrics.summary(FEB, FEB)  # [FEB, FEB) is empty
        # whole calendar months only when both ends are first-of-month midnights
        assert e.metrics.summary(JAN, "2024-03-01").months == 2
        # else days / (365.25 / 12): 15 days -> 15 x 12 / 365.25
        assert e.metrics.summary(JAN, "2024-01-16").months == F(15 * 1200, 36525)
        assert e.metrics.summary("2024-01-17", FEB).months == F(15 * 1200, 36525)
    finally:
        e.close()


# ------------------------------------------------------------- health bands


def test_health_bands_include_their_threshold() -> None:
    bands = Config().health.bands  # healthy >= 70, at risk >= 40
    assert [bands.band(v) for v in (70, 69.99, 40, 39.99)] == [
        "healthy", "at risk", "at risk", "critical"]


# ------------------------------------------------- gaps: facts at the same instant


def test_gap_facts_at_the_very_instant_count(engine: LifecycleEngine) -> None:
    h = History(engine)
    for c in ("det", "pro", "hand"):
        h.register(c)
        h.cmd("owner_assigned", c, 0, owner="sue")
    # a check-in (an advocacy request) at the instant of the answer follows it up
    h.cmd("nps_answer", "det", 1, score=2)
    h.cmd("check_in", "det", 1)
    h.cmd("nps_answer", "pro", 1, score=10)
    h.cmd("advocacy_requested", "pro", 1, team="marketing", kind="review")
    # a handover decided exactly at AS_OF is no longer pending then
    h.cmd("handover_sent", "hand", 1, team="sales", handover_id="x", from_team="sales",
          to_team="success")
    h.cmd("handover_accepted", "hand", 5, handover_id="x")
    kinds = ("detractor_ignored", "promoter_not_asked", "handover_stale")
    assert [g for k in kinds for g in gaps(engine, day(60), k)] == []
    assert gaps(engine, day(5), "handover_stale") == []
    assert gaps(engine, day(5, -1), "handover_stale") == [("hand", day(3))]  # sent + 2 days
