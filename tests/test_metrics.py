"""Every metric of docs/metrics.md computed by hand for tests/metrics_history.py, compared
exactly (Fractions) on memory, SQLite and PostgreSQL. The arithmetic is in the comments."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction as F

import metrics_history
import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.errors import InvalidInput, UnknownCustomer
from lifecycle_es.reading.metrics import MrrPoint, NpsPoint

FROM, TO = "2024-01-01", "2024-04-01"


@pytest.fixture
def hist(engine: LifecycleEngine) -> LifecycleEngine:
    metrics_history.build(engine)
    return engine


def test_retention_and_churn_by_hand(hist: LifecycleEngine) -> None:
    s = hist.metrics.summary(FROM, TO)
    # S = paying at 2024-01-01: c01 c02 c03 c04 c07 c11 (c05 churned 2023-10-01, c08's
    # purchase is voided) = 6
    # E = paying at 2024-04-01: c01 c03 c04 c05 (won back 02-01) c06 c07 (won back 03-01)
    # c11 = 7 (c02 and c12 churned)
    # N = E - S = {c05, c06} = 2
    assert (s.paying_at_start, s.paying_at_end, s.new, s.retained) == (6, 7, 2, 5)
    assert s.retention_rate == F(5, 6)  # (7 - 2) / 6
    # churned in [FROM, TO) among S: c02 (02-10), c07 (01-15; won back later, still counts);
    # c12 churned too but was not in S
    assert s.churned == 2
    assert s.churn_rate == F(2, 6)
    assert s.months == 3  # whole calendar months


def test_summaries_read_together_equal_each_alone(hist: LifecycleEngine) -> None:
    periods = [(FROM, TO), ("2023-10-01", "2024-01-01"), ("2024-02-20", "2024-03-01")]
    together = hist.metrics.summaries(periods, margin="0.8")
    assert together == [hist.metrics.summary(a, b, margin="0.8") for a, b in periods]
    # the periods differ: a mix-up of their columns would show
    assert len({(s.paying_at_start, s.paying_at_end, s.nps.answers) for s in together}) == 3
    with hist.projections.reading():  # within a call: from the rows the series read too
        assert hist.metrics.summaries(periods, margin="0.8") == together
        hist.metrics.mrr_series(FROM, TO)
        assert hist.metrics.summaries(periods, margin="0.8") == together


def test_grr_nrr_per_currency_by_hand(hist: LifecycleEngine) -> None:
    eur, usd = hist.metrics.summary(FROM, TO).revenue
    # EUR customers of S, MRR at FROM -> at TO:
    #   c01 10000 -> 12000 (expansion), c02 5000 -> 0 (churned), c03 8000 -> 5000
    #   (contraction), c07 4000 -> 4000 (churned, won back at 4000), c11 10000 -> 10000
    # start 37000, end 31000, sum of min = 10000 + 0 + 5000 + 4000 + 10000 = 29000
    assert (eur.currency, eur.customers, eur.mrr_start, eur.mrr_end, eur.mrr_retained) == (
        "EUR", 5, 37000, 31000, 29000)
    assert eur.grr == F(29, 37)
    assert eur.nrr == F(31, 37)
    # USD: c04 20000 -> 25000 (renewal with new MRR): GRR = 20000/20000, NRR = 25000/20000
    assert (usd.currency, usd.mrr_start, usd.mrr_end) == ("USD", 20000, 25000)
    assert usd.grr == 1
    assert usd.nrr == F(5, 4)


def test_nps_and_csat_by_hand(hist: LifecycleEngine) -> None:
    s = hist.metrics.summary(FROM, TO)
    # NPS answers in the period: 10 (c01), 3 (c02), 8 (c03), 9 (c04), 7 (c06), 0 (c09),
    # 10 and 9 (c11) = 8 answers; promoters 10,9,10,9 = 4; detractors 3,0 = 2; passives 2
    # NPS = 100 * (4 - 2) / 8 = 25
    assert (s.nps.answers, s.nps.promoters, s.nps.passives, s.nps.detractors) == (8, 4, 2, 2)
    assert s.nps.score == 25
    # CSAT answers: 5 (c03), 4 (c04), 2 (c06), 3 (c12): 2 of 4 are 4-5
    assert (s.csat.answers, s.csat.satisfied, s.csat.share) == (4, 2, F(1, 2))
    # A period with one promoter only (2024-02-20 .. 2024-03-01: c01's 10) scores 100
    assert hist.metrics.summary("2024-02-20", "2024-03-01").nps.score == 100


def test_clv_by_hand(hist: LifecycleEngine) -> None:
    s = hist.metrics.summary(FROM, TO)
    eur, usd = s.historical_clv
    # Payments before 2024-04-01 per EUR customer: c01 5 x 10000 = 50000; c02 2 x 5000 =
    # 10000; c03 8000 + 8000 + 5000 = 21000; c05 3000 + 3000 + 4000 = 10000; c06 6000;
    # c07 4000; c11 2 x 10000 = 20000. Sum 121000 over 7 customers.
    # Sorted: 4000 6000 10000 [10000] 20000 21000 50000 -> median 10000
    assert (eur.customers, eur.total, eur.mean, eur.median) == (7, 121000, F(121000, 7), 10000)
    # USD: c04 3 x 20000 = 60000, c12 10000: mean 35000, median (10000 + 60000) / 2
    assert (usd.customers, usd.total, usd.mean, usd.median) == (2, 70000, 35000, 35000)
    # Predictive: monthly churn = (2/6) / 3 months = 1/9
    # EUR ARPA = 37000 / 5 = 7400; CLV = 7400 x 1 / (1/9) = 66600
    # USD ARPA = 20000 / 1; CLV = 20000 x 9 = 180000
    p_eur, p_usd = s.predictive_clv
    assert (p_eur.arpa, p_eur.monthly_churn_rate, p_eur.value) == (7400, F(1, 9), 66600)
    assert (p_usd.arpa, p_usd.value, p_usd.undefined) == (20000, 180000, None)
    # margin 0.8: 7400 x 4/5 x 9 = 53280
    assert hist.metrics.summary(FROM, TO, margin="0.8").predictive_clv[0].value == 53280


def test_undefined_rates_say_so(hist: LifecycleEngine) -> None:
    # Nobody was paying on 2023-01-01: every rate over S is undefined, not 0.
    s = hist.metrics.summary("2023-01-01", "2023-02-01")
    assert (s.paying_at_start, s.retention_rate, s.churn_rate) == (0, None, None)
    assert s.nps.score is None and s.csat.share is None
    # December 2023: S = c01 c02 c03 (bought 12-01 00:00) c07 c11, nobody churned, so the
    # monthly churn rate is 0 and predictive CLV is undefined
    s = hist.metrics.summary("2023-12-01", "2024-01-01")
    assert s.churn_rate == 0
    assert all(p.value is None and "no churn" in (p.undefined or "")
               for p in s.predictive_clv)
    with pytest.raises(InvalidInput, match="margin"):
        hist.metrics.summary(FROM, TO, margin="1.5")
    with pytest.raises(InvalidInput, match="to="):
        hist.metrics.summary(TO, FROM)


def test_funnel_ever_counts_skipped_stages(hist: LifecycleEngine) -> None:
    f = hist.metrics.funnel()
    # furthest stage entered (aw=0 co=1 pu=2 on=3 re=4 ad=5): c01 3, c02 2, c03 4, c04 2,
    # c05 3 (won back into onboarding), c06 2, c07 3, c08 2, c09 0, c10 1, c11 5, c12 2
    by = {s.stage: s for s in f.stages}
    assert [s.reached for s in f.stages] == [12, 11, 10, 5, 2, 1]
    # awareness skipped by c03 and c10 (registered in consideration)
    assert (by["awareness"].entered, by["awareness"].skipped) == (10, 2)
    # consideration entered by c01 c03 c06 c10 only; 7 of the 11 skipped it
    assert (by["consideration"].entered, by["consideration"].skipped) == (4, 7)
    assert by["purchase"].skipped == 0 and by["onboarding"].skipped == 0
    assert [s.conversion_to_next for s in f.stages] == [
        F(11, 12), F(10, 11), F(5, 10), F(2, 5), F(1, 2), None]
    # days between first entries of consecutive stages:
    # aw->co: c01 10, c06 15 -> median 12.5
    # co->pu: c01 21, c03 91 (09-01 -> 12-01), c06 12 -> 21
    # pu->on: c11 17, c01 30, c03 40, c07 182, c05 215 -> 40
    # on->re: c03 60 (01-10 -> 03-10), c11 61 (06-01 -> 08-01) -> 60.5
    # re->ad: c11 162 (2023-08-01 -> 2024-01-10)
    assert [s.median_days_to_next for s in f.stages] == [
        F(25, 2), 21, 40, F(121, 2), 162, None]
    assert [s.to_next_samples for s in f.stages] == [2, 3, 5, 2, 1, 0]


def test_funnel_for_a_period(hist: LifecycleEngine) -> None:
    f = hist.metrics.funnel(FROM, TO)
    # stages entered in the period: c03 on, re (4); c05 on (3); c06 aw co pu (2); c07 on (3);
    # c09 aw (0); c10 co (1); c11 ad, re, ad (5); c12 aw, pu (2). c01 c02 c04 c08: none.
    assert f.customers == 8
    assert [s.reached for s in f.stages] == [8, 7, 6, 4, 2, 1]
    # skipped: awareness c03 c10; consideration c03? no, c03 entered it in 2023 -> c05 c07
    # c11 c12 never entered it
    assert [s.skipped for s in f.stages] == [2, 4, 0, 0, 0, 0]
    assert f.stages[0].median_days_to_next == 15  # c06 only: 01-05 -> 01-20


def test_time_in_stage_by_hand(hist: LifecycleEngine) -> None:
    t = hist.metrics.time_in_stage(as_of="2024-04-01")
    by = {s.stage: s for s in t.stages}
    # completed awareness stays (days): c01 10, c02 41, c04 49, c05 30, c06 15, c07 31,
    # c08 30.5, c11 14, c12 59; sorted 10 14 15 30 [30.5] 31 41 49 59
    # median 30.5; p90 = value at rank ceil(0.9 x 9) = 9 -> 59
    aw = by["awareness"]
    assert (aw.completed, aw.median_days, aw.p90_days) == (9, F(61, 2), 59)
    # open: c09 since 02-10: 19 days of February + 1 + 31 of March = 51
    assert (aw.open, aw.open_median_days) == (1, 51)
    # retention: c11 162 (2023-08-01 -> 2024-01-10) and 29 (02-10 -> 03-10); open c03 22
    re = by["retention"]
    assert (re.completed, re.median_days, re.p90_days) == (2, F(191, 2), 162)
    assert (re.open, re.open_median_days) == (1, 22)
    # churned: completed c05 123 (2023-10-01 -> 2024-02-01), c07 46 (01-15 -> 03-01);
    # open c02 51 (02-10 ->), c12 12 (03-20 ->)
    ch = by["churned"]
    assert (ch.completed, ch.median_days, ch.p90_days) == (2, F(169, 2), 123)
    assert (ch.open, ch.open_median_days, ch.open_p90_days) == (2, F(63, 2), 51)
    # only stays that ended in Q1 2024: awareness c06 15, c12 59 -> median 37
    q1 = {s.stage: s for s in hist.metrics.time_in_stage(FROM, TO).stages}
    assert (q1["awareness"].completed, q1["awareness"].median_days) == (2, 37)


def test_stage_history_exact_for_past_dates(hist: LifecycleEngine) -> None:
    h = {s.stage: s for s in hist.metrics.stage_history("c11", "2024-04-01")}
    # advocacy: 01-10 -> 02-10 (31 days) and 03-10 -> 04-01 (22 days), open
    ad = h["advocacy"]
    assert (ad.entries, ad.cumulative_days, ad.in_stage) == (2, 53, True)
    assert ad.first_entered == datetime(2024, 1, 10, tzinfo=UTC)
    assert ad.last_entered == datetime(2024, 3, 10, tzinfo=UTC)
    assert ad.last_exited == datetime(2024, 2, 10, tzinfo=UTC)
    # retention: 162 + 29 = 191 days, two entries, closed
    assert (h["retention"].entries, h["retention"].cumulative_days) == (2, 191)
    # As of 2024-03-01 retention is open again: 162 + 20 (02-10 -> 03-01)
    past = {s.stage: s for s in hist.metrics.stage_history("c11", "2024-03-01")}
    assert (past["retention"].entries, past["retention"].cumulative_days) == (2, 182)
    assert past["retention"].in_stage and not past["advocacy"].in_stage
    assert past["advocacy"].cumulative_days == 31
    # the stage_history table (now) agrees with the stays clipped at a late date
    rows = hist.projections.read.fetchall(
        "SELECT stage, entries, cumulative_seconds FROM stage_history WHERE customer=?",
        ("c11",))
    table = {s: (n, sec) for s, n, sec in rows}
    assert table["retention"] == (2, 191 * 86400)
    assert table["advocacy"][0] == 2 and table["advocacy"][1] == 31 * 86400  # completed only
    with pytest.raises(UnknownCustomer):
        hist.metrics.stage_history("nobody")


def test_cohorts_by_first_purchase(hist: LifecycleEngine) -> None:
    c = hist.metrics.cohorts(as_of="2024-04-01")
    assert c.last_month == "2024-03"
    rows = {r.cohort: r for r in c.rows}
    # c08's voided purchase makes no cohort; c12's cohort is 2024-03
    assert sorted(rows) == ["2023-05", "2023-07", "2023-09", "2023-11", "2023-12", "2024-02",
                            "2024-03"]
    # 2023-11 (c01, c02), paying at the end of Nov, Dec, Jan, Feb, Mar: c02 churned 02-10
    assert rows["2023-11"].active == [2, 2, 2, 1, 1]
    assert rows["2023-11"].shares == [1, 1, 1, F(1, 2), F(1, 2)]
    # 2023-07 (c05): paying at 08-01, 09-01; churned at 10-01 exactly (not paying at 10-01);
    # won back at 02-01 exactly (paying at 02-01)
    assert rows["2023-07"].active == [1, 1, 0, 0, 0, 0, 1, 1, 1]
    # 2023-09 (c07): churned 01-15, won back 03-01
    assert rows["2023-09"].active == [1, 1, 1, 1, 0, 1, 1]
    assert rows["2023-12"].active == [2, 2, 2, 2]
    assert rows["2024-03"].active == [0]  # c12 churned 03-20
    assert rows["2023-05"].active == [1] * 11


def test_cohorts_by_payments(hist: LifecycleEngine) -> None:
    c = hist.metrics.cohorts("payments", as_of="2024-04-01")
    rows = {r.cohort: r for r in c.rows}
    # 2023-11: c01 pays every month, c02 in Nov and Dec
    assert (rows["2023-11"].size, rows["2023-11"].active) == (2, [2, 2, 1, 1, 1])
    # 2023-12: c03 (Dec, Jan, Mar), c04 (Dec, Jan, Feb)
    assert rows["2023-12"].active == [2, 2, 1, 1]
    assert rows["2023-12"].shares == [1, 1, F(1, 2), F(1, 2)]
    # 2023-07: c05 paid Jul, Aug, then Feb 2024 (k = 7)
    assert rows["2023-07"].active == [1, 1, 0, 0, 0, 0, 0, 1, 0]
    assert rows["2023-05"].active == [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]
    assert rows["2024-03"].active == [1]
    with pytest.raises(InvalidInput, match="activity"):
        hist.metrics.cohorts("visits")


def test_monthly_series(hist: LifecycleEngine) -> None:
    mrr = hist.metrics.mrr_series(FROM, TO)
    # end of January (02-01 00:00): EUR c01 10000 + c02 5000 + c03 8000 + c05 4000 (won
    # back 02-01) + c06 6000 (bought 02-01) + c07 0 + c11 10000 = 43000, 6 paying; USD c04
    # end of March: EUR 12000 + 0 + 5000 + 4000 + 6000 + 4000 + 10000 = 41000; USD 25000
    assert mrr[0] == MrrPoint("2024-01", "EUR", 43000, 6)
    assert mrr[1] == MrrPoint("2024-01", "USD", 20000, 1)
    assert mrr[-2:] == [MrrPoint("2024-03", "EUR", 41000, 6),
                        MrrPoint("2024-03", "USD", 25000, 1)]
    assert [p.month for p in mrr] == ["2024-01"] * 2 + ["2024-02"] * 2 + ["2024-03"] * 2
    # NPS by month: Jan 3 and 10 -> 0; Feb 10, 9, 0 -> 100/3; Mar 8, 7, 9 -> 100/3
    assert hist.metrics.nps_series(FROM, TO) == [
        NpsPoint("2024-01", 2, 1, 1, F(0)), NpsPoint("2024-02", 3, 2, 1, F(100, 3)),
        NpsPoint("2024-03", 3, 1, 0, F(100, 3))]


def test_json_is_plain(hist: LifecycleEngine) -> None:
    d = hist.metrics.summary(FROM, TO).to_dict()
    assert d["retention_rate"] == 5 / 6
    assert d["revenue"][0]["grr"] == 29 / 37
    assert d["start"] == "2024-01-01T00:00:00+00:00"
    assert hist.metrics.cohorts(as_of="2024-04-01").to_dict()["rows"][0]["shares"][0] == 1.0


def test_voided_purchase_is_excluded(engine: LifecycleEngine) -> None:
    metrics_history.build(engine, void_c08=False)
    # before the void c08 bought on 2023-12-31 12:00 and counts in S and in a cohort
    assert "c08" in engine.metrics.paying_at("2024-01-01")
    assert engine.metrics.summary(FROM, TO).paying_at_start == 7
    assert "2023-12" in {r.cohort for r in engine.metrics.cohorts(as_of="2024-04-01").rows}
    metrics_history.void(engine)
    s = engine.metrics.summary(FROM, TO)
    assert "c08" not in engine.metrics.paying_at("2024-01-01")
    assert (s.paying_at_start, s.retention_rate) == (6, F(5, 6))
    assert s.revenue[0].mrr_start == 37000
    dec = {r.cohort: r for r in engine.metrics.cohorts(as_of="2024-04-01").rows}["2023-12"]
    assert dec.size == 2  # c03 and c04 only


def _tables(engine: LifecycleEngine) -> dict[str, list[tuple[object, ...]]]:
    pm = engine.projections
    out = {}
    for name in ("metrics", "stage_history"):
        for t in pm.projections[name].tables:
            cols = ", ".join(t.columns)
            out[t.name] = sorted(pm.read.fetchall(f"SELECT {cols} FROM {t.name}"), key=repr)
    return out


def test_rebuild_equals_incremental(engine: LifecycleEngine) -> None:
    metrics_history.build(engine, void_c08=False)
    engine.projections.catch_up(["metrics", "stage_history"])
    metrics_history.void(engine)  # re-folds c08 incrementally
    engine.projections.catch_up(["metrics", "stage_history"])
    incremental = _tables(engine)
    engine.projections.rebuild(["metrics", "stage_history"])
    assert _tables(engine) == incremental
