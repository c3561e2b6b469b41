"""A large backlog is caught up by a rebuild of the read model (the bulk path), a small one
in batches; both end at the head with the rows of a catch-up in batches."""

from __future__ import annotations

from pathlib import Path

from projection_gen import snapshot, write

from lifecycle_es import LifecycleEngine

MODELS = ["current_stage", "handover_history"]


def test_a_large_backlog_is_caught_up_by_a_rebuild(durable_store_url: str,
                                                   tmp_path: Path) -> None:
    by_rebuild = LifecycleEngine(durable_store_url)
    in_batches = LifecycleEngine(f"sqlite:///{tmp_path / 'b.db'}")  # the reference
    try:
        for eng in (by_rebuild, in_batches):
            eng.projections.rebuild_backlog = 10**9
            write(eng, customers=20)
            eng.projections.catch_up(MODELS)
            write(eng, customers=100, seed=2, start=20)  # more than a quarter of the log
        pm = by_rebuild.projections
        pm.rebuild_backlog = 100
        assert all(s.rebuilt_at is None for s in pm.status(MODELS))
        assert pm.catch_up(MODELS) == pm.head()  # a rebuild replays the whole log
        assert in_batches.projections.catch_up(MODELS) < in_batches.projections.head()
        status = pm.status(MODELS)
        assert all(s.rebuilt_at is not None and s.position == s.head
                   and s.state == "up to date" for s in status), status
        assert snapshot(pm, MODELS) == snapshot(in_batches.projections, MODELS)
        for eng in (by_rebuild, in_batches):
            write(eng, customers=5, seed=4, start=120)  # a small backlog: in batches
        rebuilt_at = [s.rebuilt_at for s in pm.status(MODELS)]
        assert 0 < pm.catch_up(MODELS) < pm.head()
        in_batches.projections.catch_up(MODELS)
        assert [s.rebuilt_at for s in pm.status(MODELS)] == rebuilt_at
        assert snapshot(pm, MODELS) == snapshot(in_batches.projections, MODELS)
    finally:
        by_rebuild.close()
        in_batches.close()
