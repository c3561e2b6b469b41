"""A poisonous event (made by plain SQL in the stored log, bypassing validation) stops only
the read models that cannot apply it; --skip-failing records it and goes on."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from cli_helpers import cli
from projection_gen import write
from psycopg import sql

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain import Customer
from lifecycle_es.reading.projection import queries
from lifecycle_es.reading.projection.runner import ProjectionFailed, ProjectionManager
from lifecycle_es.stores.url import StoreURL

T0 = datetime(2024, 3, 1, 9, tzinfo=UTC)
AT = {"actor": "ann", "team": "sales"}
#: the read models the year-1 check-in breaks (they store its business time)
DATE_VICTIMS = {"audit_index", "gaps_facts"}


def _state_sql(store: StoreURL) -> tuple[str, str]:
    if store.kind == "sqlite":
        return ("SELECT state FROM stored_events WHERE rowid=?",
                "UPDATE stored_events SET state=? WHERE rowid=?")
    table = sql.Identifier(store.schema, "lifecycle_events").as_string(None)
    return (f"SELECT state FROM {table} WHERE notification_id=%s",
            f"UPDATE {table} SET state=%s WHERE notification_id=%s")


def poison(url: str, position: int, change: Callable[[bytes], bytes]) -> None:
    """Rewrite the stored state of the event at ``position`` with plain SQL."""
    store = StoreURL.parse(url)
    select, update = _state_sql(store)
    if store.kind == "sqlite":
        with sqlite3.connect(store.path) as conn:
            old = bytes(conn.execute(select, (position,)).fetchone()[0])
            new = change(old)
            conn.execute(update, (new, position))
    else:
        with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as pg:
            row = pg.execute(select, (position,)).fetchone()
            assert row is not None
            old = bytes(row[0])
            new = change(old)
            pg.execute(update, (new, position))
    assert new != old


def set_field(name: str, raw_json_value: bytes) -> Callable[[bytes], bytes]:
    def change(state: bytes) -> bytes:
        return re.sub(rb'"' + name.encode() + rb'":("[^"]*"|\d+)',
                      b'"' + name.encode() + b'":' + raw_json_value, state, count=1)
    return change


def history(url: str) -> tuple[LifecycleEngine, int]:
    """A generated log with customer 'poison' in the middle; returns the engine and the
    position of its check-in (made poisonous by the tests). Written without encryption, so
    the poison reaches personal fields too (as in a store written before it)."""
    eng = LifecycleEngine(url, encrypt=False)
    write(eng, customers=8)
    eng.register(customer="poison", name="Poison Ltd", segment="smb", source="web",
                 at=T0, **AT)
    eng.purchase(customer="poison", plan="pro", mrr=4900, currency="EUR",
                 contract_start="2024-03-01", contract_end="2025-03-01",
                 at=T0 + timedelta(hours=1), **AT)
    eng.check_in(customer="poison", at=T0 + timedelta(hours=2), **AT)
    position = eng.projections.head()
    eng.change_stage(customer="poison", to_stage="consideration",
                     at=T0 + timedelta(hours=3), **AT)
    write(eng, customers=5, start=8, seed=2)  # and more events after it
    return eng, position


def raw(pm: ProjectionManager, names: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the named read models' live tables, read past any staleness check."""
    return {t.name: pm.read.fetchall(f"SELECT * FROM {t.name} ORDER BY {', '.join(t.key)}")
            for n in names for t in pm.projections[n].tables}


def assert_stopped_at(pm: ProjectionManager, victims: set[str], position: int,
                      event_type: str, error: str) -> None:
    status = {s.name: s for s in pm.status()}
    head = pm.head()
    for name, s in status.items():
        if name in victims:
            assert s.state == "failed" and s.position == position - 1, s
            assert s.failure is not None
            assert (s.failure["position"], s.failure["event_type"], s.failure["customer"]) \
                == (position, event_type, "poison")
            assert error in s.failure["error"] and "\n" not in s.failure["error"]
        else:
            assert (s.state, s.position) == ("up to date", head), s


def test_poisonous_event_stops_only_its_read_models(durable_store_url: str) -> None:
    url = durable_store_url
    eng, position = history(url)
    pm = eng.projections
    poison(url, position, set_field("occurred_at", b'"0001-01-01T00:00:00+14:00"'))
    others = sorted(set(pm.names) - DATE_VICTIMS)

    with pytest.raises(ProjectionFailed) as caught:
        pm.catch_up(batch_size=7)  # the event is in the middle of a batch
    assert {f.projection for f in caught.value.failures} == DATE_VICTIMS
    assert f"since position {position} (check_in of customer 'poison'" in str(caught.value)
    assert_stopped_at(pm, DATE_VICTIMS, position, "check_in", "OverflowError")
    # The failing read model holds every event before the poisonous one, none after.
    audit_rows = pm.read.fetchall("SELECT position FROM audit_index ORDER BY position")
    assert [r[0] for r in audit_rows] == list(range(1, position))
    # Every other read model is complete: equal to a clean rebuild of it.
    before = raw(pm, others)
    pm.rebuild(others, batch_size=50)
    assert raw(pm, others) == before

    # Queries of a failed read model say it is stale and since where; others answer.
    at = pm.failures(["audit_index"])[0].at
    for query in (lambda: eng.audit.events(), lambda: eng.gaps(), lambda: eng.health(),
                  lambda: pm.fetch("audit_index"),
                  lambda: pm.check_current(["current_stage", "gaps_facts"])):
        with pytest.raises(ProjectionFailed, match=f"since position {position} "):
            query()
    assert eng.customer("poison").version == 4
    assert queries.customer_stage(pm, "poison")["stage"] == "consideration"
    assert pm.failures(["audit_index"])[0].at == at  # retried, still the same failure

    # A rebuild stops those read models at the same event and swaps in the others.
    live = raw(pm, DATE_VICTIMS)
    with pytest.raises(ProjectionFailed, match="rebuild stopped") as caught:
        pm.rebuild(batch_size=13)
    assert sorted(caught.value.rebuilt) == others
    assert {f.position for f in caught.value.failures} == {position}
    assert raw(pm, DATE_VICTIMS) == live  # the live tables are untouched
    status = {s.name: s for s in pm.status()}
    assert status["audit_index"].state == "failed, rebuild failed"
    assert status["audit_index"].rebuild_failure["position"] == position  # type: ignore[index]

    # The CLI: status exits 4 with the details, a query of a failed model one line.
    proc = cli(url, "projections", "status", check=False)
    assert proc.returncode == 4, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("audit_index:")]
    assert [ln.split(" at position")[0] for ln in lines] == [
        "audit_index: failed", "audit_index: rebuild failed"]
    assert all(f"at position {position} (check_in, customer 'poison') since " in ln
               and ln.endswith("OverflowError: date value out of range") for ln in lines)
    proc = cli(url, "audit", "events", check=False)
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    assert f"audit_index since position {position}" in proc.stderr.splitlines()[-1]

    # --skip-failing records the event, passes over it and clears the failure.
    cli(url, "projections", "run", "--once", "--skip-failing")
    skipped = json.loads(cli(url, "projections", "errors", "--json").stdout)
    assert sorted((e["model"], e["position"], e["customer"], e["event_type"])
                  for e in skipped) == [(m, position, "poison", "check_in")
                                        for m in sorted(DATE_VICTIMS)]
    assert all(e["error"].startswith("OverflowError") and e["skipped_at"] for e in skipped)
    assert pm.failures() == []
    proc = cli(url, "projections", "status", check=False)  # the failed rebuild is pending
    assert proc.returncode == 4 and "audit_index: rebuild failed" in proc.stderr
    assert "audit_index: failed" not in proc.stderr
    # What the live run skipped, a rebuild with --skip-failing skips too: same rows.
    live = raw(pm, DATE_VICTIMS)
    assert live["audit_index"][-1][0] == pm.head()
    pm.rebuild(sorted(DATE_VICTIMS), batch_size=11, skip_failing=True)
    assert raw(pm, DATE_VICTIMS) == live
    assert [(e["model"], e["position"]) for e in pm.skipped()] == [
        (m, position) for m in sorted(DATE_VICTIMS)]  # the replaced tables' rows are gone
    assert all(s.failure is None and s.rebuild_failure is None and s.state == "up to date"
               for s in pm.status())
    eng.close()


#: read models that store a customer's MRR (an MRR over 63 bits fails their row write)
MRR_VICTIMS = {"current_stage", "gaps_facts", "metrics"}


@pytest.mark.parametrize("mrr", [b"9223372036854775808", b"1e400"],
                         ids=["over-63-bits", "infinite"])
def test_an_impossible_mrr_stops_the_read_models_storing_it(durable_store_url: str,
                                                            mrr: bytes) -> None:
    """2**63 decodes but fits no 64-bit column: the row write fails. 1e400 cannot even be
    decoded: every read model handling purchases fails. The others go on."""
    url = durable_store_url
    eng, position = history(url)
    pm = eng.projections
    pm.catch_up()
    poison(url, position - 1, set_field("mrr", mrr))
    pm.rebuild(skip_failing=True)  # from the whole log: the purchase is in the middle
    handlers = {n for n, p in pm.projections.items() if p.handles(Customer.Purchased)}
    undecodable = mrr == b"1e400"
    victims = handlers if undecodable else MRR_VICTIMS
    assert "handover_history" not in victims
    skipped = pm.skipped()
    assert {e["model"] for e in skipped} == victims
    assert {(e["position"], e["event_type"], e["customer"]) for e in skipped} == {
        (position - 1, "purchase", "poison")}
    assert all(e["error"].startswith("cannot decode the stored event") == undecodable
               for e in skipped)
    # Without --skip-failing a rebuild stops them there; the others are rebuilt.
    with pytest.raises(ProjectionFailed) as caught:
        pm.rebuild(batch_size=17)
    assert {f.projection for f in caught.value.failures} == victims
    assert set(caught.value.rebuilt) == set(pm.names) - victims
    proc = cli(url, "projections", "rebuild", "--skip-failing", "--json")
    assert set(json.loads(proc.stdout)["projections"]) == set(pm.names)
    eng.close()


def test_a_nul_byte_stops_the_read_models_storing_it_on_postgres(
        store_url_factory: Callable[[str], str]) -> None:
    """PostgreSQL text cannot hold NUL: the row write fails, not the handler."""
    url = store_url_factory("postgres")
    eng, position = history(url)
    pm = eng.projections
    poison(url, position - 2, lambda s: s.replace(b'"Poison Ltd"', b'"Poison\\u0000Ltd"'))
    with pytest.raises(ProjectionFailed) as caught:
        pm.catch_up(batch_size=5)
    failed = {f.projection: f for f in caught.value.failures}
    assert "current_stage" in failed and "handover_history" not in failed
    f = failed["current_stage"]
    assert (f.position, f.event_type, f.customer) == (position - 2, "customer_registered",
                                                       "poison")
    assert "0x00" in f.error
    with pytest.raises(ProjectionFailed, match="current_stage since position"):
        queries.stage_counts(pm, catch_up=False)
    proc = cli(url, "stage", check=False)
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    eng.close()


def test_void_and_rebuild_skipping_recovers_as_if_it_never_happened(
        store_url_factory: Callable[[str], str]) -> None:
    """The documented recovery: void the poisonous event, rebuild with --skip-failing: the
    per-customer read models equal those of a twin store where the event was only voided."""
    poisoned_url, twin_url = store_url_factory("sqlite"), store_url_factory("sqlite")
    models = ["current_stage", "gaps_facts", "metrics", "stage_history"]
    rows = []
    for url in (poisoned_url, twin_url):
        eng, position = history(url)
        if url == poisoned_url:
            poison(url, position, set_field("occurred_at", b'"0001-01-01T00:00:00+14:00"'))
        eng.void_event(customer="poison", voided_version=3, reason="bad time",
                       at=T0 + timedelta(hours=4), **AT)
        if url == poisoned_url:
            eng.projections.rebuild(skip_failing=True)
            assert {e["position"] for e in eng.projections.skipped()} == {position}
        else:
            eng.projections.catch_up()
        rows.append(raw(eng.projections, models))
        eng.close()
    assert rows[0] == rows[1]
