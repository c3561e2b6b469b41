"""The read store's SQL: parameters bound by the driver in both dialects, statistics of
rebuilt tables on PostgreSQL."""

from __future__ import annotations

from projection_gen import write

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection.db import to_format_style


def test_a_question_mark_inside_a_literal_is_text(durable_store_url: str) -> None:
    eng = LifecycleEngine(durable_store_url)
    try:
        write(eng, customers=5)
        pm = eng.projections
        pm.catch_up(["current_stage"])
        everyone = pm.fetch("current_stage", order="customer")
        assert len(everyone) == 5
        assert pm.fetch("current_stage", "segment <> 'what?'", order="customer") == everyone
        assert pm.fetch("current_stage", "segment <> 'what?' AND customer = ?",
                        [everyone[0]["customer"]]) == everyone[:1]
        assert pm.fetch("current_stage", "customer LIKE '%' || ? || '%'",
                        [everyone[1]["customer"]]) == everyone[1:2]
    finally:
        eng.close()


def test_placeholders_outside_literals_only() -> None:
    assert to_format_style("a = ? AND b <> 'x?''y%' AND \"q?\" = ?") == \
        "a = %s AND b <> 'x?''y%%' AND \"q?\" = %s"


def test_a_rebuild_leaves_statistics_on_postgres(durable_store_url: str) -> None:
    eng = LifecycleEngine(durable_store_url)
    try:
        write(eng, customers=5)
        pm = eng.projections
        pm.rebuild(["current_stage"])
        if pm.read.dialect != "postgresql":
            return  # SQLite's planner needs no statistics
        row = pm.read.fetchone(
            "SELECT analyze_count, last_analyze FROM pg_stat_user_tables "
            "WHERE schemaname = ? AND relname = ?", (pm.read.schema, "current_stage"))
        assert row is not None and row[0] >= 1 and row[1] is not None
    finally:
        eng.close()
