"""`rebuild(jobs=N)`: groups of read models filled by worker processes, swapped in together.

The kill -9 / Ctrl-C and zero-downtime tests run with ``--jobs 2`` too
(test_rebuild_kill.py, test_rebuild_zero_downtime.py)."""

from __future__ import annotations

import pytest
from projection_gen import snapshot, write
from test_projection_failures import MRR_VICTIMS, history, poison, raw, set_field

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.parallel import AUTO_MIN_EVENTS, default_jobs, plan
from lifecycle_es.reading.projection.runner import ProjectionFailed

EVERY = ("audit_index", "current_stage", "gaps_facts", "handover_history", "metrics",
         "stage_history")


def _model(name: str, cost: float) -> Projection:
    cls = type(name, (Projection,), {"name": name, "rebuild_cost": cost})
    projection: Projection = cls(CLASSIC)
    return projection


def test_groups_are_balanced_by_cost_and_keep_their_order() -> None:
    costs = {"a": 5.0, "b": 0.5, "c": 1.5, "d": 0.3, "e": 2.5, "f": 1.0}
    group = [_model(n, c) for n, c in costs.items()]
    for jobs in (2, 3):
        parts = [[p.name for p in part] for part in plan(group, jobs)]
        assert sorted(n for part in parts for n in part) == sorted(costs)  # each once
        assert all(part == sorted(part) for part in parts)  # in the group's order
        loads = sorted(sum(costs[n] for n in part) for part in parts)
        fair = max(max(costs.values()), sum(costs.values()) / jobs + 1.0)
        assert len(parts) == jobs and loads[-1] <= fair, parts
    assert ["a"] in [[p.name for p in part] for part in plan(group, 3)]  # the heavy alone
    assert len(plan(group, 99)) == len(group)  # at most one group per read model
    assert [len(part) for part in plan(group, 1)] == [6]


def test_default_jobs_is_one_for_a_short_log() -> None:
    assert default_jobs(AUTO_MIN_EVENTS - 1) == 1
    assert 1 <= default_jobs(AUTO_MIN_EVENTS) <= 2


def test_parallel_rebuild_equals_a_one_process_rebuild(durable_store_url: str) -> None:
    eng = LifecycleEngine(durable_store_url)
    try:
        write(eng, customers=120)
        pm = eng.projections
        events = pm.rebuild(jobs=1)
        alone = snapshot(pm, EVERY)
        assert pm.rebuild(jobs=2) == events == pm.head()
        assert snapshot(pm, EVERY) == alone
        assert {s.state for s in pm.status()} == {"up to date"}
        assert not [n for n in pm.names if pm.read.table_exists(
            pm.projections[n].tables[0].name + "__shadow")]
    finally:
        eng.close()


def test_a_worker_whose_read_models_fail_leaves_them_and_swaps_the_others(
        durable_store_url: str) -> None:
    """The failing event is in a read model of one worker; the other worker's and that
    worker's other read models are swapped in, as in a one-process rebuild."""
    eng, position = history(durable_store_url)
    try:
        pm = eng.projections
        pm.catch_up()
        before = raw(pm, MRR_VICTIMS)
        poison(durable_store_url, position - 1, set_field("mrr", b"9223372036854775808"))
        with pytest.raises(ProjectionFailed) as caught:
            pm.rebuild(batch_size=7, jobs=2)
        assert {f.projection for f in caught.value.failures} == MRR_VICTIMS
        assert set(caught.value.rebuilt) == set(pm.names) - MRR_VICTIMS
        assert raw(pm, MRR_VICTIMS) == before  # their live tables are untouched
        pm.rebuild(skip_failing=True, jobs=2)  # resumes the victims where they stopped
        assert {s.state for s in pm.status()} == {"up to date"}
        assert {e["model"] for e in pm.skipped()} == MRR_VICTIMS
    finally:
        eng.close()
