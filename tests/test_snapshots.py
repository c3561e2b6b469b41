"""Snapshots: a customer loaded from its latest snapshot plus the events after it is the
customer a full replay gives, at every version, voids included; snapshots hold no personal
data in clear; a snapshot of another fold, or one that cannot be written, changes nothing."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from projection_gen import commands_from_choices
from test_properties_domain import fold

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain import customer_snapshot
from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.customer_snapshot import CustomerSnapshot
from lifecycle_es.domain.ids import customer_id
from lifecycle_es.errors import ConfigError, InvalidInput, StoreError
from lifecycle_es.privacy import ERASED
from lifecycle_es.writing import bulk_write
from lifecycle_es.writing.application import LifecycleApplication

WHO = {"at": "2025-03-01T10:00:00+01:00", "actor": "ann", "team": "sales"}
NAME = "Zoë Snapshot-Person"

_examples = itertools.count()


def _engines(factory: Callable[[str], str], kind: str) -> tuple[str, str]:
    urls: dict[str, str] = vars(factory).setdefault("snapshot_store_urls", {})
    if kind not in urls:
        urls[kind] = factory(kind)
    return urls[kind], kind


def _same(a: Customer, b: Customer) -> None:
    assert (a.version, a.state, a.voided) == (b.version, b.state, b.voided)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choices=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 19),
                                  st.integers(0, 1 << 16)), min_size=1, max_size=45),
       every=st.integers(2, 7))
def test_snapshot_plus_tail_is_a_full_replay_at_every_version(
    store_url_factory: Callable[[str], str], kind: str, choices: list[tuple[int, int, int]],
    every: int,
) -> None:
    url, _ = _engines(store_url_factory, kind)
    prefix = f"s{next(_examples)}-"
    commands = [c.model_copy(update={"customer": prefix + c.key})
                for c in commands_from_choices(choices, customers=2)]
    live = fold(commands)
    writer = LifecycleEngine(url, snapshot_every=every)
    replayer = LifecycleEngine(url, snapshot_every=0)
    try:
        for cmd in commands:  # one by one: the library's snapshotting after each save
            writer.execute(cmd)
        for key, aggregate in live.items():
            loaded = writer.customer(key)
            _same(loaded, aggregate)
            _same(replayer.customer(key), aggregate)
            assert loaded.recent == [] and loaded.origin.replayed <= loaded.version
            for version in range(1, aggregate.version + 1):
                at = writer.writer.repository.get(aggregate.id, version=version)
                _same(at, replayer.writer.repository.get(aggregate.id, version=version))
        for a in live.values():  # the property is not vacuous: snapshots were used
            assert bool(_snapshot_versions(writer, a.id)) == (a.version >= every)
    finally:
        writer.close()
        replayer.close()


def _snapshot_versions(engine: LifecycleEngine, aggregate_id: Any) -> list[int]:
    snapshots = engine.writer.snapshots
    assert snapshots is not None
    return [s.originator_version for s in snapshots.recorder.select_events(aggregate_id)]


def _long_customer(engine: LifecycleEngine, events: int) -> Customer:
    engine.register(customer="long", name=NAME, segment="smb", source="web", **WHO)
    for i in range(events - 1):
        engine.check_in(customer="long", notes=f"call {i} with {NAME}", **WHO)
    return engine.customer("long")


@pytest.fixture
def durable(durable_store_url: str) -> Iterator[LifecycleEngine]:
    engine = LifecycleEngine(durable_store_url, snapshot_every=10)
    yield engine
    engine.close()


def test_a_loaded_customer_holds_only_its_tail(durable: LifecycleEngine) -> None:
    c = _long_customer(durable, 57)
    assert c.version == 57 and _snapshot_versions(durable, c.id) == [10, 20, 30, 40, 50]
    assert c.origin.replayed == 7 and c.recent == []
    assert not any(isinstance(v, list) and len(v) > 10 for v in vars(c).values())
    durable.check_in(customer="long", **WHO)
    assert durable.customer("long").origin.replayed == 8


def test_a_void_older_than_the_snapshot_refolds_and_snapshots_again(
        durable: LifecycleEngine) -> None:
    durable.register(customer="v", name=NAME, segment="smb", source="web", **WHO)
    durable.purchase(customer="v", plan="pro", mrr=5000, currency="EUR",
                     contract_start="2025-03-01", contract_end="2026-03-01", **WHO)
    for _ in range(20):
        durable.payment(customer="v", amount=100, currency="EUR", **WHO)
    before = durable.customer("v")
    assert before.state.total_paid == 2000 and before.origin.replayed == 2  # snapshot at 20
    durable.void_event(customer="v", voided_version=3, reason="refunded", **WHO)
    after = durable.customer("v")
    assert after.state.total_paid == 1900 and after.voided == {3: 23}
    assert 23 in _snapshot_versions(durable, after.id)  # taken right after the void
    assert after.origin.replayed == 0
    full = LifecycleEngine(durable.store, snapshot_every=0)
    _same(after, full.customer("v"))
    full.close()
    # a void in the tail of a snapshot older than the voided event re-folds in memory
    durable.void_event(customer="v", voided_version=5, reason="refunded", **WHO)
    assert durable.customer("v").state.total_paid == 1800


def test_an_imported_history_is_snapshotted_once_committed(
        durable: LifecycleEngine, tmp_path: Path) -> None:
    lines = [{"type": "customer_registered", "customer": "imp", "name": NAME,
              "segment": "smb", "source": "web", **WHO}]
    lines += [{"type": "check_in", "customer": "imp", **WHO}] * 30
    lines += [{"type": "customer_registered", "customer": "short", "name": NAME,
               "segment": "smb", "source": "web", **WHO}]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    durable.import_file(str(path))
    c = durable.customer("imp")
    assert _snapshot_versions(durable, c.id) == [31] and c.origin.replayed == 0
    assert _snapshot_versions(durable, durable.customer("short").id) == []  # 1 < 10 events
    durable.check_in(customer="imp", **WHO)
    assert _snapshot_versions(durable, c.id) == [31]
    assert durable.customer("imp").origin.replayed == 1


@pytest.mark.parametrize("bad", [False, True], ids=["committed", "refused"])
def test_a_large_import_snapshots_the_customers_of_both_processes(
        durable_store_url: str, bad: bool) -> None:
    """The engine and its writer process each snapshot the customers they checked, after
    the commit; an import refused for a bad line writes none. Known customers are
    snapshotted again only once a load would fold ``snapshot_every`` events since."""
    engine = LifecycleEngine(durable_store_url, snapshot_every=10)
    try:
        keys = [f"bulk-{n:02d}" for n in range(40)]
        lines = [json.dumps(x) for x in [
            *({"type": "customer_registered", "customer": k, "name": NAME, "segment": "smb",
               "source": "web", **WHO} for k in keys),
            *({"type": "check_in", "customer": k, **WHO} for _ in range(12) for k in keys)]]
        if bad:
            lines.append(json.dumps({"type": "check_in", "customer": "nobody", **WHO}))
        spawned = []
        start = bulk_write.WriterProcess.__init__

        def spy(self: Any, *args: Any, **kw: Any) -> None:
            spawned.append(1)
            start(self, *args, **kw)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(bulk_write.WriterProcess, "__init__", spy)
            m.setattr(bulk_write, "WRITER_CHECK_SHARE", 0.5)
            try:
                engine.import_lines(lines, batch_size=20)
            except InvalidInput:
                assert bad
        assert spawned, "the writer process did not run"
        ids = [customer_id(k) for k in keys]
        if bad:
            assert all(_snapshot_versions(engine, i) == [] for i in ids)
            return
        assert all(_snapshot_versions(engine, i) == [13] for i in ids)
        more = [json.dumps({"type": "check_in", "customer": k, **WHO})
                for n, k in ((3, keys[0]), (10, keys[1])) for _ in range(n)]
        engine.import_lines(more)
        assert _snapshot_versions(engine, ids[0]) == [13]
        assert _snapshot_versions(engine, ids[1]) == [13, 23]
    finally:
        engine.close()


def test_a_large_import_of_known_customers_does_not_wait_on_its_own_write_lock(
        durable_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Customers loaded once the import's writer process holds the store's write lock are
    not snapshotted then (on SQLite the snapshot waited for that lock until the URL's
    timeout, and the import failed), but after the commit."""
    sep = "&" if "?" in durable_store_url else "?"
    engine = LifecycleEngine(f"{durable_store_url}{sep}timeout=1", snapshot_every=10)
    try:
        keys = [f"known-{n:02d}" for n in range(30)]
        engine.import_lines([json.dumps(x) for x in [
            *({"type": "customer_registered", "customer": k, "name": NAME, "segment": "smb",
               "source": "web", **WHO} for k in keys),
            *({"type": "check_in", "customer": k, **WHO} for _ in range(20) for k in keys)]])
        before = {k: _snapshot_versions(engine, customer_id(k)) for k in keys}
        assert all(v == [21] for v in before.values())  # the first import's
        backlog = [json.dumps({"type": "check_in", "customer": k, **WHO})
                   for _ in range(12) for k in keys]
        snapshotted: list[int] = []
        take = LifecycleApplication._snapshot
        def spy(app: LifecycleApplication, agg: Customer) -> None:
            snapshotted.append(agg.version)
            take(app, agg)
        monkeypatch.setattr(LifecycleApplication, "_snapshot", spy)
        result = engine.import_lines(backlog, batch_size=8)  # the writer starts after 4
        assert result.events == len(backlog)
        assert snapshotted == []  # none while the import ran: each load folded 0 events
        assert all(_snapshot_versions(engine, customer_id(k)) == [21, 33] for k in keys)
    finally:
        engine.close()


def test_snapshots_hold_no_personal_data_in_clear(durable_store_url: str) -> None:
    engine = LifecycleEngine(durable_store_url, snapshot_every=5)
    try:
        c = _long_customer(engine, 12)
        assert engine.writer.snapshots is not None
        stored = list(engine.writer.snapshots.recorder.select_events(c.id))
        assert [s.originator_version for s in stored] == [5, 10]
        for s in stored:
            assert NAME.encode() not in s.state and b"_pii" in s.state
        # sealed for its snapshot: the same token under an event's binding does not open
        engine.erase(customer="long", reason="asked")
        snap = engine.writer.snapshots.get(c.id, desc=True, limit=1)
        got = next(iter(snap))
        assert isinstance(got, CustomerSnapshot) and got.mutate(None).state.name == ERASED
        assert engine.customer("long").state.name == ERASED
    finally:
        engine.close()


def test_a_snapshot_of_another_fold_is_ignored(durable: LifecycleEngine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    c = _long_customer(durable, 25)
    assert c.origin.replayed == 5
    monkeypatch.setattr(customer_snapshot, "FOLD_VERSION", customer_snapshot.FOLD_VERSION + 1)
    customer_snapshot.fold_fingerprint.cache_clear()
    try:
        again = durable.customer("long")
        assert again.origin.replayed == 25  # replayed, not read from the old fold's snapshot
        _same(again, c)
    finally:
        customer_snapshot.fold_fingerprint.cache_clear()


@pytest.mark.parametrize("error", [IntegrityError("another process wrote it first"),
                                   StoreError("store x: unreachable (gave up after 5 s)")])
def test_a_snapshot_that_cannot_be_written_does_not_fail_the_command(
        durable: LifecycleEngine, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    assert durable.writer.snapshots is not None

    def clash(_: Any) -> None:
        raise error

    monkeypatch.setattr(durable.writer.snapshots, "put", clash)
    c = _long_customer(durable, 12)
    assert c.version == 12 and c.origin.replayed == 12
    assert len(durable.history("long")) == 12


def test_a_store_opened_to_read_gets_no_snapshot_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    LifecycleEngine(url, snapshot_every=0).register(
        customer="a", name=NAME, segment="smb", source="web", **WHO)
    reader = LifecycleEngine(url, create=False)
    assert reader.customer("a").state.name == NAME and reader.writer.snapshots is None
    tables = {r[0] for r in sqlite3.connect(tmp_path / "old.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "stored_snapshots" not in tables
    writer = LifecycleEngine(url)
    assert writer.writer.snapshots is not None


@pytest.mark.parametrize("given", [-1, "ten", 10**7, True, 2.5])
def test_a_bad_interval_is_refused(given: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="snapshot_every"):
        LifecycleEngine(f"sqlite:///{tmp_path / 'x.db'}", snapshot_every=given)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("given", ["-5", "lots", "1e3", "\x1b[31m", "\u0663", "9" * 40])
def test_a_bad_interval_in_the_environment_is_refused(
        given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_ES_SNAPSHOT_EVERY", given)
    with pytest.raises(ConfigError, match="LIFECYCLE_ES_SNAPSHOT_EVERY"):
        LifecycleEngine(f"sqlite:///{tmp_path / 'x.db'}")


def test_the_interval_comes_from_the_environment(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_ES_SNAPSHOT_EVERY", "4")
    engine = LifecycleEngine(f"sqlite:///{tmp_path / 'x.db'}")
    c = _long_customer(engine, 9)
    assert engine.writer.snapshot_every == 4 and _snapshot_versions(engine, c.id) == [4, 8]


def test_a_void_behind_the_snapshot_with_no_snapshot_after_it_is_a_full_replay(
        durable: LifecycleEngine) -> None:
    """The void is written by an engine that takes no snapshots, so the snapshotting
    engine loads from a snapshot older than the voided event's void: it must replay."""
    durable.register(customer="v", name=NAME, segment="smb", source="web", **WHO)
    durable.purchase(customer="v", plan="pro", mrr=5000, currency="EUR",
                     contract_start="2025-03-01", contract_end="2026-03-01", **WHO)
    for _ in range(20):
        durable.payment(customer="v", amount=100, currency="EUR", **WHO)
    assert durable.customer("v").state.total_paid == 2000
    plain = LifecycleEngine(durable.store, snapshot_every=0)
    try:
        plain.void_event(customer="v", voided_version=3, reason="refunded", **WHO)
        replayed = plain.customer("v")
    finally:
        plain.close()
    loaded = durable.customer("v")
    assert _snapshot_versions(durable, loaded.id) == [10, 20]  # none after the void
    assert replayed.state.total_paid == 1900 and replayed.voided == {3: 23}
    _same(loaded, replayed)
    assert loaded.origin.replayed == 23  # the whole history, not snapshot 20 + the void
