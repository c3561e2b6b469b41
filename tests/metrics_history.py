"""A small, hand-written history (12 customers, classic stage model) for the metrics tests.

Every metric of docs/metrics.md is computed by hand from these events in tests/test_metrics.py.
All times are UTC; 2024 is a leap year (February has 29 days).

    c01 aw 2023-10-01 -> co 10-11 -> pu 11-01 (purchase EUR 10000) -> on 12-01;
        pays 10000 on 11-01, 12-01, 01-01, 02-01, 03-01; expansion +2000 2024-02-15; NPS 10 02-20
    c02 aw 2023-10-05 -> pu 11-15 (purchase EUR 5000; skipped consideration);
        pays 5000 11-15, 12-15; NPS 3 2024-01-20; churned 2024-02-10
    c03 registered in co 2023-09-01 -> pu 12-01 (purchase EUR 8000) -> on 2024-01-10
        -> re 03-10; pays 8000 12-01, 01-01, 5000 03-01; contraction -3000 03-01;
        CSAT 5 01-15; NPS 8 03-05
    c04 aw 2023-11-01 -> pu 12-20 (purchase USD 20000); pays 20000 12-20, 01-20, 02-20;
        NPS 9 + CSAT 4 2024-02-01; renewal new_mrr 25000 03-15
    c05 aw 2023-06-01 -> pu 07-01 (purchase EUR 3000); pays 3000 07-01, 08-01;
        churned 10-01; won back (-> onboarding) 2024-02-01 mrr 4000; pays 4000 02-01
    c06 aw 2024-01-05 -> co 01-20 -> pu 02-01 (purchase EUR 6000); pays 6000 02-01;
        NPS 7 + CSAT 2 03-01
    c07 aw 2023-08-01 -> pu 09-01 (purchase EUR 4000); pays 4000 09-01; churned 2024-01-15;
        won back 03-01 mrr 4000
    c08 aw 2023-12-01 -> pu 12-31 12:00 (purchase EUR 2000, then VOIDED)
    c09 aw 2024-02-10; NPS 0 02-15
    c10 registered in co 2024-03-20
    c11 aw 2023-05-01 -> pu 05-15 (purchase EUR 10000) -> on 06-01 -> re 08-01
        -> ad 2024-01-10 -> re 02-10 -> ad 03-10; pays 10000 2023-05-15, 2024-01-15;
        NPS 10 01-05, NPS 9 03-15
    c12 aw 2024-01-02 -> pu 03-01 (purchase USD 10000); pays 10000 03-01; churned 03-20;
        CSAT 3 03-21
"""

from __future__ import annotations

from typing import Any

from lifecycle_es import LifecycleEngine

WHO = {"actor": "ann", "team": "sales"}


def _t(day: str) -> str:
    return day if "T" in day else f"{day}T00:00:00Z"


def register(e: LifecycleEngine, c: str, day: str, stage: str | None = None) -> None:
    extra: dict[str, Any] = {"stage": stage} if stage else {}
    e.register(customer=c, name=c.upper(), segment="smb", source="web", at=_t(day), **WHO,
               **extra)


def move(e: LifecycleEngine, c: str, day: str, stage: str) -> None:
    e.change_stage(customer=c, to_stage=stage, at=_t(day), **WHO)


def buy(e: LifecycleEngine, c: str, day: str, mrr: int, currency: str = "EUR") -> int:
    return e.purchase(customer=c, plan="pro", mrr=mrr, currency=currency,
                      contract_start=day[:10], contract_end="2026-01-01", at=_t(day), **WHO)


def pay(e: LifecycleEngine, c: str, amount: int, *days: str, currency: str = "EUR") -> None:
    for day in days:
        e.payment(customer=c, amount=amount, currency=currency, at=_t(day), **WHO)


def nps(e: LifecycleEngine, c: str, day: str, score: int) -> None:
    e.nps_answer(customer=c, score=score, at=_t(day), **WHO)


def csat(e: LifecycleEngine, c: str, day: str, score: int) -> None:
    e.csat_answer(customer=c, score=score, at=_t(day), **WHO)


def build(e: LifecycleEngine, *, void_c08: bool = True) -> int:
    """Record the history; returns the version of c08's purchase (voided unless told not)."""
    register(e, "c01", "2023-10-01")
    move(e, "c01", "2023-10-11", "consideration")
    move(e, "c01", "2023-11-01", "purchase")
    buy(e, "c01", "2023-11-01", 10000)
    move(e, "c01", "2023-12-01", "onboarding")
    pay(e, "c01", 10000, "2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01")
    e.expansion(customer="c01", mrr_delta=2000, at=_t("2024-02-15"), **WHO)
    nps(e, "c01", "2024-02-20", 10)

    register(e, "c02", "2023-10-05")
    move(e, "c02", "2023-11-15", "purchase")
    buy(e, "c02", "2023-11-15", 5000)
    pay(e, "c02", 5000, "2023-11-15", "2023-12-15")
    nps(e, "c02", "2024-01-20", 3)
    e.churn(customer="c02", at=_t("2024-02-10"), **WHO)

    register(e, "c03", "2023-09-01", "consideration")
    move(e, "c03", "2023-12-01", "purchase")
    buy(e, "c03", "2023-12-01", 8000)
    move(e, "c03", "2024-01-10", "onboarding")
    pay(e, "c03", 8000, "2023-12-01", "2024-01-01")
    csat(e, "c03", "2024-01-15", 5)
    e.contraction(customer="c03", mrr_delta=3000, at=_t("2024-03-01"), **WHO)
    pay(e, "c03", 5000, "2024-03-01")
    nps(e, "c03", "2024-03-05", 8)
    move(e, "c03", "2024-03-10", "retention")

    register(e, "c04", "2023-11-01")
    move(e, "c04", "2023-12-20", "purchase")
    buy(e, "c04", "2023-12-20", 20000, "USD")
    pay(e, "c04", 20000, "2023-12-20", "2024-01-20", "2024-02-20", currency="USD")
    nps(e, "c04", "2024-02-01", 9)
    csat(e, "c04", "2024-02-01", 4)
    e.renewal(customer="c04", new_contract_end="2027-01-01", new_mrr=25000,
              at=_t("2024-03-15"), **WHO)

    register(e, "c05", "2023-06-01")
    move(e, "c05", "2023-07-01", "purchase")
    buy(e, "c05", "2023-07-01", 3000)
    pay(e, "c05", 3000, "2023-07-01", "2023-08-01")
    e.churn(customer="c05", at=_t("2023-10-01"), **WHO)
    e.win_back(customer="c05", mrr=4000, at=_t("2024-02-01"), **WHO)
    pay(e, "c05", 4000, "2024-02-01")

    register(e, "c06", "2024-01-05")
    move(e, "c06", "2024-01-20", "consideration")
    move(e, "c06", "2024-02-01", "purchase")
    buy(e, "c06", "2024-02-01", 6000)
    pay(e, "c06", 6000, "2024-02-01")
    nps(e, "c06", "2024-03-01", 7)
    csat(e, "c06", "2024-03-01", 2)

    register(e, "c07", "2023-08-01")
    move(e, "c07", "2023-09-01", "purchase")
    buy(e, "c07", "2023-09-01", 4000)
    pay(e, "c07", 4000, "2023-09-01")
    e.churn(customer="c07", at=_t("2024-01-15"), **WHO)
    e.win_back(customer="c07", mrr=4000, at=_t("2024-03-01"), **WHO)

    register(e, "c08", "2023-12-01")
    move(e, "c08", "2023-12-31T12:00:00Z", "purchase")
    c08_purchase = buy(e, "c08", "2023-12-31T12:00:00Z", 2000)
    if void_c08:
        void(e)

    register(e, "c09", "2024-02-10")
    nps(e, "c09", "2024-02-15", 0)

    register(e, "c10", "2024-03-20", "consideration")

    register(e, "c11", "2023-05-01")
    move(e, "c11", "2023-05-15", "purchase")
    buy(e, "c11", "2023-05-15", 10000)
    pay(e, "c11", 10000, "2023-05-15")
    move(e, "c11", "2023-06-01", "onboarding")
    move(e, "c11", "2023-08-01", "retention")
    nps(e, "c11", "2024-01-05", 10)
    move(e, "c11", "2024-01-10", "advocacy")
    pay(e, "c11", 10000, "2024-01-15")
    move(e, "c11", "2024-02-10", "retention")
    move(e, "c11", "2024-03-10", "advocacy")
    nps(e, "c11", "2024-03-15", 9)

    register(e, "c12", "2024-01-02")
    move(e, "c12", "2024-03-01", "purchase")
    buy(e, "c12", "2024-03-01", 10000, "USD")
    pay(e, "c12", 10000, "2024-03-01", currency="USD")
    e.churn(customer="c12", at=_t("2024-03-20"), **WHO)
    csat(e, "c12", "2024-03-21", 3)
    return c08_purchase


def void(e: LifecycleEngine) -> None:
    """Void c08's purchase (its third event)."""
    e.void_event(customer="c08", voided_version=3, reason="entered by mistake",
                 at=_t("2024-01-03"), **WHO)
