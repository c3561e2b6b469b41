"""A replay by aggregate loads its shadow tables without their primary key and builds it
when phase one ends: the swapped-in tables still refuse a second row per key and take
upserts, and a read model that writes one key from two aggregates is told so."""

from __future__ import annotations

from pathlib import Path

import pytest
from projection_gen import write

from lifecycle_es import LifecycleEngine
from lifecycle_es.errors import LifecycleError

AT = {"actor": "ann", "team": "sales"}


def test_the_rebuilt_tables_have_their_key(durable_store_url: str) -> None:
    eng = LifecycleEngine(durable_store_url)
    try:
        write(eng, customers=20)
        pm = eng.projections
        pm.rebuild(["current_stage", "stage_history"])
        eng.check_in(customer="c0", at="2030-01-01T00:00:00Z", **AT)
        pm.catch_up(["current_stage", "stage_history"])  # upserts on the rebuilt tables
        rows = pm.fetch("current_stage", "customer=?", ["c0"])
        assert len(rows) == 1 and rows[0]["last_event_at"].year == 2030
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"), pm.read.transaction():
            pm.read.execute("INSERT INTO current_stage (customer) VALUES (?)", ("c0",))
    finally:
        eng.close()


SHARED_ROW = '''
from lifecycle_es.domain import Customer
from lifecycle_es.projection import Projection, Table, Tables, on


class Everyone(Projection):
    name = "everyone"
    replay_by_aggregate = True  # wrong: every customer writes the same row
    tables = (Table("everyone", key=("k",), partition=None,
                    columns={"k": "text", "last": "text"}),)

    @on(Customer.Registered)
    def registered(self, e: Customer.Registered, db: Tables) -> None:
        db["everyone"].put({"k": "all", "last": e.customer})
'''


def test_one_key_written_by_two_aggregates_is_named(durable_store_url: str,
                                                    tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "everyone.py").write_text(SHARED_ROW)
    eng = LifecycleEngine(durable_store_url, projections_path=[str(folder)])
    try:
        write(eng, customers=5)
        with pytest.raises(LifecycleError, match=r"table everyone: two rows with the same "
                                                 r"key \(k\).*replay_by_aggregate = False"):
            eng.projections.rebuild(["everyone"], batch_size=1)  # a batch per customer
        assert eng.projections.status(["everyone"])[0].state.endswith("(by aggregate)")
    finally:
        eng.close()
