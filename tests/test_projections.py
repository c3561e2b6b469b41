"""Read models through the embedded API: catch up, rebuild, status, versions, queries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from projection_gen import snapshot, write

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate, parse_all
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.errors import InvalidInput, UnknownCustomer
from lifecycle_es.reading.projection import queries
from lifecycle_es.reading.projection.runner import SHADOW, RebuildNeeded, UnknownProjection

AT = {"actor": "ann", "team": "sales"}
T0 = datetime(2024, 1, 1, 9, tzinfo=UTC)


def at(hours: float) -> dict[str, object]:
    return {"at": T0 + timedelta(hours=hours), **AT}


def test_catch_up_builds_rows_and_follows_new_events(engine: LifecycleEngine) -> None:
    engine.register(customer="acme", name="Acme", segment="smb", source="web", **at(0))
    engine.change_stage(customer="acme", to_stage="consideration", **at(1))
    assert engine.projections.catch_up() > 0
    row = queries.customer_stage(engine.projections, "acme", catch_up=False)
    assert (row["stage"], row["since"], row["stage_team"]) == (
        "consideration", T0 + timedelta(hours=1), "sales")
    engine.assign_owner(customer="acme", owner="bob", **at(2))
    engine.change_stage(customer="acme", to_stage="awareness", **at(3))
    row = queries.customer_stage(engine.projections, "acme")  # catches up itself
    assert (row["owner"], row["owner_team"], row["regressions"]) == ("bob", "sales", 1)
    assert engine.projections.catch_up(["current_stage"]) == 0
    st = {s.name: s for s in engine.projections.status()}["current_stage"]
    assert (st.position, st.lag, st.rows, st.state) == (4, 0, 1, "up to date")


def test_void_folds_the_event_out(engine: LifecycleEngine) -> None:
    engine.register(customer="acme", name="Acme", segment="smb", source="web", **at(0))
    engine.send_handover(customer="acme", handover_id="h1", from_team="sales",
                         to_team="success", **at(1))
    engine.purchase(customer="acme", plan="pro", mrr=500, currency="EUR",
                    contract_start="2024-01-01", contract_end="2025-01-01", **at(2))
    engine.projections.catch_up()
    assert len(queries.handovers(engine.projections, catch_up=False)) == 1
    engine.void_event(customer="acme", voided_version=2, reason="wrong customer", **at(3))
    engine.void_event(customer="acme", voided_version=3, reason="test order", **at(4))
    assert queries.handovers(engine.projections) == []
    row = queries.customer_stage(engine.projections, "acme")
    assert (row["paying"], row["mrr"], row["last_event_at"]) == (False, 0, T0)


def test_a_rebuild_skips_voided_events_instead_of_refolding(
        engine: LifecycleEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebuild's replay by aggregate knows each customer's later voids: the read models
    that re-fold on a void skip the voided events and the voids (no re-fold, which reads
    the customer's whole history per void), and end with the rows a catch-up gives."""
    from lifecycle_es.reading.projection.applier import Applier

    engine.register(customer="acme", name="Acme", segment="smb", source="web", **at(0))
    engine.send_handover(customer="acme", handover_id="h1", from_team="sales",
                         to_team="success", **at(1))
    engine.purchase(customer="acme", plan="pro", mrr=500, currency="EUR",
                    contract_start="2024-01-01", contract_end="2025-01-01", **at(2))
    engine.void_event(customer="acme", voided_version=2, reason="wrong customer", **at(3))
    engine.purchase(customer="acme", plan="pro", mrr=700, currency="EUR",
                    contract_start="2024-01-01", contract_end="2025-01-01", **at(4))
    engine.void_event(customer="acme", voided_version=3, reason="test order", **at(5))
    pm = engine.projections
    pm.catch_up()
    live = snapshot(pm)
    refolds: list[int] = []
    refold = Applier._refold
    monkeypatch.setattr(Applier, "_refold", lambda self, p, void, tables: (
        refolds.append(void.originator_version), refold(self, p, void, tables))[1])
    pm.rebuild()
    assert refolds == [] and snapshot(pm) == live
    assert queries.handovers(pm) == []
    assert queries.customer_stage(pm, "acme")["mrr"] == 700


def test_rebuild_equals_catch_up_and_reports_status(engine: LifecycleEngine) -> None:
    write(engine, customers=40)
    pm = engine.projections
    pm.catch_up()
    live = snapshot(pm)
    assert pm.rebuild(["current_stage", "handover_history"], batch_size=97) == pm.head()
    assert snapshot(pm) == live
    st = {s.name: s for s in pm.status()}
    assert st["current_stage"].rows == 40
    assert st["current_stage"].rebuilt_at is not None
    assert not pm.read.table_exists("current_stage" + SHADOW)


def test_unknown_projection_lists_known_ones(engine: LifecycleEngine) -> None:
    with pytest.raises(UnknownProjection, match=r"nope.*known: .*current_stage"):
        engine.projections.rebuild(["nope"])


def test_queries(engine: LifecycleEngine) -> None:
    for i, stage in enumerate(["awareness", "consideration", "consideration"]):
        engine.register(customer=f"c{i}", name="X", segment="smb", source="web",
                        stage=stage, **at(0))
    engine.send_handover(customer="c1", handover_id="h1", from_team="sales",
                         to_team="success", **at(1))
    engine.send_handover(customer="c2", handover_id="h1", from_team="sales",
                         to_team="success", **at(30))
    engine.accept_handover(customer="c2", handover_id="h1", **{**at(31), "team": "success"})
    counts = {r["stage"]: r["customers"] for r in queries.stage_counts(engine.projections)}
    assert counts["awareness"] == 1 and counts["consideration"] == 2
    assert counts["churned"] == 0
    pm = engine.projections
    now = T0 + timedelta(hours=50)
    assert [h["customer"] for h in queries.handovers(pm, pending=True)] == ["c1"]
    assert [h["customer"] for h in queries.handovers(pm, older_than=timedelta(hours=19),
                                                     now=now)] == ["c1", "c2"]
    assert [h["customer"] for h in queries.handovers(pm, older_than=timedelta(hours=40),
                                                     now=now)] == ["c1"]
    accepted = queries.handovers(pm, customer="c2")[0]
    assert (accepted["status"], accepted["latency_seconds"]) == ("accepted", 3600.0)
    with pytest.raises(UnknownCustomer):
        queries.customer_stage(pm, "nobody")


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("3d", timedelta(days=3)),
    ("1.5d", timedelta(hours=36))])
def test_parse_age(text: str, expected: timedelta) -> None:
    assert queries.parse_age(text) == expected


def test_parse_age_names_field_and_value() -> None:
    with pytest.raises(InvalidInput, match=r"older_than='3 weeks'"):
        queries.parse_age("3 weeks")


VERSIONED = '''
from lifecycle_es.domain import Customer
from lifecycle_es.projection import Projection, Table, Tables, on


class Touches(Projection):
    name = "touches"
    version = {version}
    tables = (Table("touches", key=("customer",),
                    columns={{"customer": "text", "n": "int"}}),)

    @on(Customer.Registered)
    def registered(self, e: Customer.Registered, db: Tables) -> None:
        db["touches"].put({{"customer": e.customer, "n": {version}}})
'''


def test_version_change_needs_rebuild(durable_store_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "touches.py").write_text(VERSIONED.format(version=1))
    eng = LifecycleEngine(durable_store_url, projections_path=[str(folder)])
    eng.register(customer="acme", name="Acme", segment="smb", source="web", **at(0))
    eng.projections.catch_up()
    eng.close()
    folder2 = tmp_path / "custom2"  # a new module path: the registry caches by path
    folder2.mkdir()
    (folder2 / "touches.py").write_text(VERSIONED.format(version=2))
    eng = LifecycleEngine(durable_store_url, projections_path=[str(folder2)])
    try:
        pm = eng.projections
        eng.register(customer="beta", name="Beta", segment="smb", source="web", **at(1))
        assert {s.name: s.state for s in pm.status()}["touches"] == "rebuild needed"
        with pytest.raises(RebuildNeeded, match="touches"):
            pm.catch_up()
        # the other read models were still caught up
        assert {s.name: s.lag for s in pm.status()}["current_stage"] == 0
        pm.rebuild(["touches"])
        assert pm.fetch("touches", order="customer") == [
            {"customer": "acme", "n": 2}, {"customer": "beta", "n": 2}]
        assert {s.name: s.state for s in pm.status()}["touches"] == "up to date"
    finally:
        eng.close()


def test_concurrent_catch_ups_apply_each_event_once(
        durable_store_url: str, store_url_factory: Callable[[str], str]) -> None:
    """Two managers (as two runners would) catching up at once end like one."""
    writer = LifecycleEngine(durable_store_url)
    write(writer, customers=60)
    runners = [LifecycleEngine(durable_store_url) for _ in range(2)]
    errors: list[BaseException] = []

    def run(eng: LifecycleEngine) -> None:
        try:
            for _ in range(3):
                eng.projections.catch_up(["current_stage", "handover_history"],
                                         batch_size=50)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in runners]
    for t in threads:
        t.start()
    write_more = threading.Thread(target=write, args=(writer, 20, 10, 2, 60))
    write_more.start()
    for t in [*threads, write_more]:
        t.join()
    assert not errors
    pm = writer.projections
    pm.catch_up(["current_stage", "handover_history"])
    got = snapshot(pm)
    clean = LifecycleEngine(store_url_factory(durable_store_url.split(":")[0]
                                              .replace("postgresql", "postgres")))
    try:
        write(clean, customers=60)
        write(clean, customers=20, seed=2, start=60)
        clean.projections.catch_up(["current_stage", "handover_history"])
        assert snapshot(clean.projections) == got
    finally:
        for e in [writer, *runners, clean]:
            e.close()


class _InterruptedConnection:
    """A PostgreSQL connection left mid-command (as Ctrl-C can leave it): ROLLBACK fails."""

    def __init__(self, conn: object) -> None:
        self.conn = conn

    def execute(self, sql: str, *args: object) -> object:
        if sql == "ROLLBACK":
            raise psycopg.OperationalError("another command is already in progress")
        return self.conn.execute(sql, *args)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.conn.close()  # type: ignore[attr-defined]


def test_a_failed_rollback_reports_the_callers_error_and_keeps_the_store_usable(
        store_url_factory: Callable[[str], str]) -> None:
    eng = LifecycleEngine(store_url_factory("postgres"))
    try:
        eng.register(customer="acme", name="Acme", segment="smb", source="web", **at(0))
        pm = eng.projections
        pm.catch_up()
        read = pm.read
        read.conn = _InterruptedConnection(read.conn)
        with pytest.raises(KeyboardInterrupt), read.transaction(["current_stage"]):
            read.execute("DELETE FROM current_stage")
            raise KeyboardInterrupt
        assert not isinstance(read.conn, _InterruptedConnection)  # reopened
        assert [r["customer"] for r in pm.fetch("current_stage")] == ["acme"]  # rolled back
        eng.register(customer="beta", name="Beta", segment="smb", source="web", **at(1))
        assert pm.catch_up() == 1
    finally:
        eng.close()


def test_catching_up_all_after_one_leaves_the_one_where_it_was(
        store_url_factory: Callable[[str], str]) -> None:
    """A read model caught up alone, then with read models starting from zero, is not
    applied again from the others' position (it was: every event counted twice)."""
    url = store_url_factory("sqlite")
    engine = LifecycleEngine(url)
    try:
        engine.record_many(parse_all(generate(60, 7, CLASSIC, date(2026, 11, 1))))
        engine.projections.catch_up(["gaps_facts"])
        engine.projections.catch_up(batch_size=500)  # the others start from 0
        models = ("gaps_facts", "metrics", "current_stage")
        got = snapshot(engine.projections, models)
        engine.projections.rebuild()
        assert snapshot(engine.projections, models) == got
    finally:
        engine.close()
