"""A history for the report's reader-facing parts: renewals due at different dates, two
unhappy customers, a customer churned and won back within the period, a customer in a
second currency, an erased customer and one whose name is markup."""

from __future__ import annotations

from gap_helpers import History, day

from lifecycle_es import LifecycleEngine

#: the report's period: 2024-03-01 -> 2024-06-01 (day 60 -> day 152), as of its end
START, END = day(60), day(152)
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">&amp; \'Ltd\''
SECRET = "Zyx-Erased-Name-qv17"


def reader_story(engine: LifecycleEngine) -> None:
    h = History(engine)
    for c in ("ren-late", "ren-soon", "wonback", "usd", "det-old", "det-new", "evil", "gone"):
        h.register(c)
    h.cmd("owner_assigned", "ren-late", 0, owner="sue")
    h.buy("ren-late", 1, "2024-06-20", mrr=2000)  # contract ends 19 days after as-of
    h.buy("ren-soon", 1, "2024-06-05", mrr=1000)  # ...and this one 4 days after: first
    h.buy("wonback", 2, "2025-01-31", mrr=500)
    h.cmd("churned", "wonback", 80, reason="budget")  # churned and won back in the period
    h.cmd("won_back", "wonback", 100, mrr=500)
    h.cmd("stage_changed", "usd", 35, team="sales", to_stage="purchase")  # a second cohort
    h.cmd("purchase", "usd", 35, team="sales", plan="pro", mrr=9900, currency="USD",
          contract_start="2024-02-05", contract_end="2025-02-04")
    h.cmd("nps_answer", "det-old", 100, score=2)  # unhappy, never called back
    h.cmd("nps_answer", "det-new", 130, score=3)  # more recently: first
    h.engine.record("customer_registered", customer="evil-2", at=day(0), team="marketing",
                    actor="ann", name=HOSTILE, segment="smb", source="web")
    h.engine.record("customer_registered", customer="erased", at=day(0), team="marketing",
                    actor="ann", name=SECRET, segment="smb", source="web")
    engine.erase(customer="erased", reason="GDPR request", actor="dpo")
