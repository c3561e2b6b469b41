"""Tamper evidence: alter the stored log with SQL, behind the engine's back, and verify."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from audit_story import tell

from lifecycle_es import LifecycleEngine, LifecycleError
from lifecycle_es.domain import customer_id
from lifecycle_es.errors import StoreError
from lifecycle_es.reading.audit.verify import Break, verify
from lifecycle_es.stores.chain import Chain, canonical_id
from lifecycle_es.stores.url import StoreURL


class Raw:
    """Direct SQL on the events' tables (``?`` placeholders on both stores)."""

    def __init__(self, url: str, events_table: str) -> None:
        self.store = StoreURL.parse(url)
        self.events = events_table
        self.pg = self.store.kind == "postgresql"
        if self.pg:
            self.conn: Any = psycopg.connect(self.store.psycopg_conninfo(), autocommit=True)
            self.conn.execute(f'SET search_path TO "{self.store.schema}"')
        else:
            self.conn = sqlite3.connect(self.store.path, isolation_level=None)
        self.nid = "notification_id" if self.pg else "rowid"

    def run(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(sql.replace("?", "%s") if self.pg else sql, params)
        return list(cur.fetchall()) if cur.description else []

    def oid(self, customer: str) -> Any:
        return customer_id(customer) if self.pg else customer_id(customer).hex

    def where(self, customer: str, version: int) -> tuple[str, tuple[Any, ...]]:
        return "originator_id = ? AND originator_version = ?", (self.oid(customer), version)


@pytest.fixture
def tampered(durable_store_url: str) -> Iterator[tuple[LifecycleEngine, Raw]]:
    engine = LifecycleEngine(durable_store_url)
    tell(engine)
    raw = Raw(durable_store_url, engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
    yield engine, raw
    raw.conn.close()
    engine.close()


def kinds(breaks: list[Break]) -> set[tuple[str, str, int | None]]:
    return {(b.kind, b.key, b.version) for b in breaks}


def test_untouched_log_verifies_clean(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = tampered
    report = verify(engine)
    assert report.clean and report.breaks == []
    assert report.events == report.chained == 10
    assert report.head is not None and report.head.position == raw.run(
        f"SELECT MAX({raw.nid}) FROM {raw.events}")[0][0]


def test_one_changed_byte_is_reported_at_its_customer_and_version(
    tampered: tuple[LifecycleEngine, Raw],
) -> None:
    engine, raw = tampered
    cond, params = raw.where("acme", 4)
    (state,) = raw.run(f"SELECT state FROM {raw.events} WHERE {cond}", *params)[0]
    forged = bytes(state).replace(b'"mrr":5000', b'"mrr":9000')
    assert len(forged) == len(bytes(state)) and forged != bytes(state)
    raw.run(f"UPDATE {raw.events} SET state = ? WHERE {cond}", forged, *params)
    assert engine.customer("acme").state.mrr == 9000  # the tampering is effective...
    report = verify(engine)
    assert kinds(report.breaks) == {("modified", "acme", 4)}  # ...and caught


def test_deleted_event_in_the_middle(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = tampered
    cond, params = raw.where("acme", 3)
    raw.run(f"DELETE FROM {raw.events} WHERE {cond}", *params)
    assert kinds(verify(engine).breaks) == {("deleted", "acme", 3)}


def test_deleted_event_and_its_digest(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = tampered
    cond, params = raw.where("acme", 3)
    (nid,) = raw.run(f"SELECT {raw.nid} FROM {raw.events} WHERE {cond}", *params)[0]
    raw.run(f"DELETE FROM {raw.events} WHERE {cond}", *params)
    raw.run("DELETE FROM event_digests WHERE notification_id = ?", nid)
    assert ("deleted", "acme", 3) in kinds(verify(engine).breaks)


def test_deleted_last_event_is_truncation(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = tampered
    (last,) = raw.run(f"SELECT MAX({raw.nid}) FROM {raw.events}")[0]
    raw.run(f"DELETE FROM {raw.events} WHERE {raw.nid} = ?", last)
    assert kinds(verify(engine).breaks) == {("truncated", "beta", 2)}
    # Removing its digest too still leaves the heads pointing past the end.
    raw.run("DELETE FROM event_digests WHERE notification_id = ?", last)
    found = kinds(verify(engine).breaks)
    assert ("truncated", "beta", 2) in found and ("truncated", "log", None) in found


def test_swapped_versions(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = tampered
    oid = raw.oid("acme")
    for old, new in ((2, -1), (3, 2), (-1, 3)):
        raw.run(f"UPDATE {raw.events} SET originator_version = ? WHERE originator_id = ? "
                "AND originator_version = ?", new, oid, old)
    assert kinds(verify(engine).breaks) == {("swapped", "acme", 2), ("swapped", "acme", 3)}


def test_swapped_contents(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = tampered
    c4, p4 = raw.where("acme", 4)
    c5, p5 = raw.where("acme", 5)
    (s4, t4), (s5, t5) = (raw.run(f"SELECT state, topic FROM {raw.events} WHERE {c}", *p)[0]
                          for c, p in ((c4, p4), (c5, p5)))
    raw.run(f"UPDATE {raw.events} SET state = ?, topic = ? WHERE {c4}", s5, t5, *p4)
    raw.run(f"UPDATE {raw.events} SET state = ?, topic = ? WHERE {c5}", s4, t4, *p5)
    assert kinds(verify(engine).breaks) == {("swapped", "acme", 4), ("swapped", "acme", 5)}


def test_forged_event(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = tampered
    cond, params = raw.where("acme", 7)
    raw.run(f"INSERT INTO {raw.events} (originator_id, originator_version, topic, state) "
            f"SELECT originator_id, 8, topic, state FROM {raw.events} WHERE {cond}", *params)
    assert len(engine.event_log.stored(customer_id("acme"))) == 8
    # a copied event's sealed personal fields are bound to their version: they do not open
    with pytest.raises(StoreError, match=r"event 8 of aggregate .* do not open"):
        engine.customer("acme")
    assert kinds(verify(engine).breaks) == {("forged", "acme", 8)}


def test_rewritten_chain_is_caught_only_by_an_external_anchor(
    tampered: tuple[LifecycleEngine, Raw],
) -> None:
    """The documented limit: rewriting every digest and head passes; an anchor catches it."""
    engine, raw = tampered
    anchor = verify(engine).head
    assert anchor is not None
    cond, params = raw.where("acme", 4)
    (state,) = raw.run(f"SELECT state FROM {raw.events} WHERE {cond}", *params)[0]
    raw.run(f"UPDATE {raw.events} SET state = ? WHERE {cond}",
            bytes(state).replace(b'"mrr":5000', b'"mrr":9000'), *params)

    rows = raw.run(f"SELECT {raw.nid}, originator_id, originator_version, topic, state "
                   f"FROM {raw.events} ORDER BY {raw.nid}")
    chain = Chain()
    chain.start(None)
    ids = [r[0] for r in rows]
    chained = [(canonical_id(r[1]), r[2], r[3],
                r[4].encode() if isinstance(r[4], str) else bytes(r[4])) for r in rows]
    digests = chain.link(ids, chained)
    raw.run("DELETE FROM event_digests")
    raw.run("DELETE FROM chain_heads")
    for nid, (agg, version, _, _), d in zip(ids, chained, digests, strict=True):
        raw.run("INSERT INTO event_digests VALUES (?, ?, ?, ?)", nid, agg, version, d)
    for head in chain.heads():
        raw.run("INSERT INTO chain_heads VALUES (?, ?, ?, ?)", *head)
    assert verify(engine).clean  # a full rewrite is not detectable from inside...
    report = verify(engine, anchor=anchor.anchor())
    assert [(b.kind, b.position) for b in report.breaks] == [("modified", anchor.position)]


def test_memory_store_has_no_chain() -> None:
    engine = LifecycleEngine("memory://")
    with pytest.raises(LifecycleError, match="keeps no hash chain"):
        verify(engine)


def test_bad_anchor_is_a_clear_error(tampered: tuple[LifecycleEngine, Raw]) -> None:
    engine, _ = tampered
    with pytest.raises(LifecycleError, match="anchor='12:zz'"):
        verify(engine, anchor="12:zz")
