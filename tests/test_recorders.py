"""The bulk recorders: notification ids, optimistic concurrency, hash chain rows, settings."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

import psycopg
import pytest

from lifecycle_es import ConcurrencyConflict, LifecycleEngine
from lifecycle_es.commands import build_command
from lifecycle_es.stores.chain import LOG_SCOPE, SETTINGS_SCOPE, ZERO, canonical_id, digest
from lifecycle_es.stores.url import StoreURL

AT = dict(at="2024-01-02T09:00:00Z", actor="ann", team="sales")


def chain_rows(engine: LifecycleEngine) -> tuple[list[tuple], dict[str, tuple]]:
    """(event_digests rows in order, chain_heads by scope) read with the raw driver."""
    store = engine.store
    if store.kind == "sqlite":
        conn = sqlite3.connect(store.path)
        links = conn.execute("SELECT notification_id, originator_id, originator_version, "
                             "digest FROM event_digests ORDER BY 1").fetchall()
        heads = conn.execute("SELECT scope, notification_id, originator_version, digest "
                             "FROM chain_heads").fetchall()
        conn.close()
    else:
        with psycopg.connect(store.psycopg_conninfo()) as conn:
            links = conn.execute(f'SELECT notification_id, originator_id, originator_version, '
                                 f'digest FROM "{store.schema}".event_digests ORDER BY 1'
                                 ).fetchall()
            heads = conn.execute(f'SELECT scope, notification_id, originator_version, digest '
                                 f'FROM "{store.schema}".chain_heads').fetchall()
    return [tuple(r) for r in links], {r[0]: tuple(r[1:]) for r in heads}


@pytest.fixture
def durable_engine(durable_store_url: str) -> Iterator[LifecycleEngine]:
    e = LifecycleEngine(durable_store_url)
    yield e
    e.close()


def test_every_event_is_chained_in_log_and_customer_order(
    durable_engine: LifecycleEngine,
) -> None:
    e = durable_engine
    e.register(customer="a", name="A", segment="smb", source="web", **AT)
    e.register(customer="b", name="B", segment="smb", source="web", **AT)
    e.check_in(customer="a", **AT)
    links, heads = chain_rows(e)
    notes = e.writer.recorder.select_notifications(1, 10)
    assert [x[0] for x in links] == [n.id for n in notes] == [1, 2, 3]
    # Recompute by hand: each digest covers the previous of the log and of the customer.
    d1 = digest(ZERO, ZERO, notes[0].originator_id, 1, notes[0].topic, notes[0].state)
    d2 = digest(d1, ZERO, notes[1].originator_id, 1, notes[1].topic, notes[1].state)
    d3 = digest(d2, d1, notes[2].originator_id, 2, notes[2].topic, notes[2].state)
    assert [bytes(x[3]) for x in links] == [d1, d2, d3]
    assert bytes(heads[LOG_SCOPE][2]) == d3
    assert bytes(heads[canonical_id(notes[0].originator_id)][2]) == d3
    assert bytes(heads[canonical_id(notes[1].originator_id)][2]) == d2


def test_bulk_import_chains_every_event(durable_engine: LifecycleEngine) -> None:
    lines = [build_command("customer_registered", dict(customer=f"c{i}", name="N",
                                                       segment="smb", source="web", **AT))
             for i in range(30)]
    lines += [build_command("check_in", dict(customer=f"c{i % 30}", **AT)) for i in range(60)]
    result = durable_engine.record_many(lines, batch_size=7)
    assert result.events == 90
    links, heads = chain_rows(durable_engine)
    assert [x[0] for x in links] == list(range(1, 91))
    assert heads[LOG_SCOPE][0] == 90
    assert len(heads.keys() - {SETTINGS_SCOPE}) == 31  # the log and 30 customers


def test_version_clash_is_a_concurrency_conflict_and_writes_nothing(
    durable_store_url: str,
) -> None:
    e1, e2 = LifecycleEngine(durable_store_url), LifecycleEngine(durable_store_url)
    e1.register(customer="a", name="A", segment="smb", source="web", **AT)
    c1, c2 = e1.customer("a"), e2.customer("a")
    cmd = build_command("check_in", dict(customer="a", **AT))
    cmd.apply(c1, e1.stage_model)  # type: ignore[attr-defined]
    cmd.apply(c2, e2.stage_model)  # type: ignore[attr-defined]
    e1.writer._write_events(c1.collect_events())
    with pytest.raises(ConcurrencyConflict, match="customer 'a'"):
        e2.writer._write_events(c2.collect_events())
    assert len(e1.history("a")) == 2
    links, _ = chain_rows(e1)
    assert len(links) == 2


def test_store_remembers_its_stage_model(
    store_url_factory: Callable[[str], str], store_kind: str
) -> None:
    url = store_url_factory(store_kind)
    assert LifecycleEngine(url).stage_model.name == "classic"
    assert LifecycleEngine(url, stage_model="customer-success").stage_model.name == (
        "customer-success")
    reopened = LifecycleEngine(url).stage_model.name
    # memory:// keeps nothing between engines; durable stores remember the model.
    assert reopened == ("classic" if store_kind == "memory" else "customer-success")


def test_redacted_url_hides_password() -> None:
    url = StoreURL.parse("postgresql://bob:s3cret@db.example:6543/prod?schema=x")
    assert "s3cret" not in url.redacted()
    assert "s3cret" not in repr(url)
    assert url.redacted() == "postgresql://bob:***@db.example:6543/prod?schema=x"


def test_chain_links_like_digest_across_batches() -> None:
    """The recorders' batch hashing gives the digests ``audit verify`` recomputes."""
    from uuid import uuid4

    from lifecycle_es.stores.chain import Chain

    a, b = str(uuid4()), str(uuid4())
    rows = [(agg, v, f"t:{v}", f'{{"n":{v}}}'.encode())
            for agg, v in ((a, 1), (b, 1), (a, 2), (b, 2), (b, 3))]
    start = b"\x01" * 32
    chain = Chain()
    chain.start(start)
    assert chain.unknown(rows[:2]) == [a, b]
    chain.learn([a, b], {b: b"\x02" * 32})
    digests = chain.link([11, 12], rows[:2]) + chain.link([13, 14, 15], rows[2:])
    prev_log, prev_agg, want = start, {b: b"\x02" * 32}, []
    for agg, version, topic, state in rows:
        prev_log = digest(prev_log, prev_agg.get(agg, ZERO), agg, version, topic, state)
        prev_agg[agg] = prev_log
        want.append(prev_log)
    assert digests == want
    assert chain.heads() == [(LOG_SCOPE, 15, 3, want[-1]), (a, 13, 2, want[2]),
                             (b, 15, 3, want[-1])]


@pytest.mark.parametrize("store_kind", ["postgres"])  # sequence gaps: PostgreSQL only
def test_postgres_ids_after_a_sequence_gap_are_chained_to_the_right_events(
    engine: LifecycleEngine,
) -> None:
    """The COPY's notification ids are read back as a range only when they are one."""
    from lifecycle_es.reading.audit.verify import verify

    e = engine
    assert e.store.kind == "postgresql"
    e.register(customer="a", name="A", segment="smb", source="web", **AT)
    table = f'"{e.store.schema}".{e.writer.recorder.events_table_name}'  # type: ignore[attr-defined]
    with psycopg.connect(e.store.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute("SELECT nextval(pg_get_serial_sequence(%s, 'notification_id')) "
                     "FROM generate_series(1, 5)", (table,))
    e.record_many([build_command("check_in", dict(customer="a", **AT)) for _ in range(4)])
    links, heads = chain_rows(e)
    ids = [n.id for n in e.writer.recorder.select_notifications(1, 10)]
    assert ids == [1, 7, 8, 9, 10]
    assert [x[0] for x in links] == ids and heads[LOG_SCOPE][0] == 10
    assert verify(e).clean

