"""Properties of the built-in read models over random valid histories (voids included).

(a) catching up after every write gives the same rows as a full rebuild;
(b) each read model equals a plain fold of the events (the aggregate's own state).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from projection_gen import ACTIONS, commands_from_choices, snapshot

from lifecycle_es import LifecycleEngine

BUILTIN = ["current_stage", "handover_history"]
CUSTOMERS = 4

histories = st.lists(
    st.tuples(st.integers(0, CUSTOMERS - 1), st.integers(0, len(ACTIONS) - 1),
              st.integers(0, 2**20)),
    min_size=1, max_size=40,
)


def _folded(eng: LifecycleEngine, customers: list[str]) -> dict[str, list[dict[str, object]]]:
    """The read models' rows computed from each customer's aggregate state."""
    model = eng.stage_model
    stage_rows, handover_rows = [], []
    for c in sorted(customers):
        s = eng.customer(c).state
        stage_rows.append({
            "customer": c, "name": s.name, "segment": s.segment, "stage": s.stage,
            "since": s.stage_since, "stage_team": model.stage(s.stage).team,
            "owner": s.owner, "owner_team": s.owner_team, "paying": s.paying, "mrr": s.mrr,
            "currency": s.currency, "regressions": s.regressions,
            "registered_at": s.registered_at, "last_event_at": s.last_event_at,
        })
        for h in sorted(s.handovers.values(), key=lambda h: h.handover_id):
            handover_rows.append({
                "customer": c, "handover_id": h.handover_id, "from_team": h.from_team,
                "to_team": h.to_team, "to_person": h.to_person, "sent_at": h.sent_at,
                "status": h.status, "decided_at": h.decided_at,
            })
    return {"current_stage": stage_rows, "handover_history": handover_rows}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(choices=histories)
def test_catch_up_equals_rebuild_equals_fold(
        kind: str, store_url_factory: Callable[[str], str],
        choices: list[tuple[int, int, int]]) -> None:
    eng = LifecycleEngine(store_url_factory(kind))
    try:
        pm = eng.projections
        customers = set()
        for cmd in commands_from_choices(choices, CUSTOMERS):
            eng.execute(cmd)
            customers.add(cmd.key)
            pm.catch_up(BUILTIN)
        live = snapshot(pm, BUILTIN)
        pm.rebuild(BUILTIN, batch_size=7)
        assert snapshot(pm, BUILTIN) == live

        folded = _folded(eng, sorted(customers))
        assert live["current_stage"] == folded["current_stage"]
        cols = list(folded["handover_history"][0]) if folded["handover_history"] else []
        assert [{c: r[c] for c in cols} for r in live["handover_history"]] == \
            folded["handover_history"]
    finally:
        eng.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(choices=histories)
def test_a_cache_too_small_for_the_read_models_changes_no_row(
        kind: str, store_url_factory: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
        choices: list[tuple[int, int, int]]) -> None:
    """Large logs do not fit the row cache: evicted rows are prefetched per batch or loaded,
    and PostgreSQL upserts go through a staging table. Every built-in read model must end
    with the same rows as when everything fits (the path small logs take)."""
    from lifecycle_es.reading.projection import db, writer

    eng = LifecycleEngine(store_url_factory(kind))
    try:
        pm = eng.projections
        commands = commands_from_choices(choices, CUSTOMERS)
        half = len(commands) // 2
        for cmd in commands[:half]:
            eng.execute(cmd)
        names = pm.names
        pm.rebuild(names, batch_size=7)
        roomy = snapshot(pm, names)
        with monkeypatch.context() as m:
            m.setattr(writer, "_CACHE_LIMIT", 2)
            m.setattr(db, "_STAGED_UPSERT_MIN", 1)
            pm.rebuild(names, batch_size=7)
            assert snapshot(pm, names) == roomy
            for cmd in commands[half:]:
                eng.execute(cmd)  # and catching up live tables, cache still too small
            pm.catch_up(names, batch_size=5)
            cramped = snapshot(pm, names)
        pm.rebuild(names)
        assert snapshot(pm, names) == cramped
    finally:
        eng.close()
