"""Small rules tested exactly at their boundaries, with hand-computed expected figures.

Each test here was written against a mutation of the rule (``<`` made ``<=``, 9 made 8, ...)
that the rest of the suite let pass; each one fails on its mutation. The rules are those of
docs/metrics.md and docs/commands.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction as F

import pytest
from metrics_history import WHO, _t, buy, register

from lifecycle_es import LifecycleEngine
from lifecycle_es.errors import InvariantViolation

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
