"""Properties of the metrics read models over random valid histories (voids included):
catching up in steps gives the same tables as a rebuild, and the facts agree with the
customer aggregates' own fold."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from projection_gen import commands_from_choices, snapshot

from lifecycle_es import LifecycleEngine

NAMES = ("metrics", "stage_history")
CUSTOMERS = 4
choices = st.lists(
    st.tuples(st.integers(0, CUSTOMERS - 1), st.integers(0, 59), st.integers(0, 1 << 20)),
    min_size=5, max_size=60,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(choices=choices, split=st.integers(1, 59))
def test_incremental_equals_rebuild_and_agrees_with_aggregates(
    choices: list[tuple[int, int, int]], split: int,
) -> None:
    cmds = commands_from_choices(choices, CUSTOMERS)
    split = min(split, len(cmds))
    with tempfile.TemporaryDirectory() as tmp:
        engine = LifecycleEngine(f"sqlite:///{Path(tmp) / 'p.db'}")
        try:
            engine.record_many(cmds[:split])
            engine.projections.catch_up(list(NAMES))
            engine.record_many(cmds[split:])  # voids here re-fold live rows
            engine.projections.catch_up(list(NAMES))
            incremental = snapshot(engine.projections, NAMES)
            engine.projections.rebuild(list(NAMES))
            assert snapshot(engine.projections, NAMES) == incremental

            facts = {r["customer"]: r for r in incremental["metrics_customers"]}
            open_stays = {r["customer"]: r for r in incremental["stage_open"]}
            for customer, row in facts.items():
                s = engine.customer(customer).state
                assert (row["paying"], row["mrr"]) == (s.paying, s.mrr), customer
                assert open_stays[customer]["stage"] == s.stage
                assert open_stays[customer]["entered_at"] == s.stage_since
                open_intervals = [p for p in incremental["metrics_paying"]
                                  if p["customer"] == customer and p["paying_to"] is None]
                assert len(open_intervals) == int(s.paying)
                if s.paying:
                    assert customer in engine.metrics.paying_at(s.last_event_at)
        finally:
            engine.close()
