"""Tamper evidence beyond the events: the data keys, the master key's fingerprint and the
snapshots, each altered with plain SQL behind the engine's back, on SQLite and PostgreSQL.

docs/audit.md ("What is detected") cites each test by name: keep the two in step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import cli
from test_audit_verify import Raw, tampered  # noqa: F401  (a fixture)

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain import customer_id
from lifecycle_es.errors import InvariantViolation, MasterKeyError
from lifecycle_es.reading.audit.verify import Break, verify
from lifecycle_es.stores.master_key import MasterKey

WHO = {"at": "2025-03-01T10:00:00Z", "actor": "ann", "team": "sales"}


@pytest.fixture
def story(durable_store_url: str, request: pytest.FixtureRequest,
          ) -> tuple[LifecycleEngine, Raw]:
    """The audit story and raw SQL on its store (``test_audit_verify.tampered``)."""
    found: tuple[LifecycleEngine, Raw] = request.getfixturevalue("tampered")
    return found


@pytest.fixture
def url(durable_store_url: str) -> str:
    return durable_store_url


def aid(customer: str) -> str:
    return str(customer_id(customer))


def wrapped(raw: Raw, customer: str) -> bytes:
    return bytes(raw.run("SELECT wrapped FROM lifecycle_keys WHERE aggregate_id = ?",
                         aid(customer))[0][0])


def found(breaks: list[Break]) -> list[tuple[str, str, str]]:
    return [(b.kind, b.aggregate, b.key) for b in breaks]


# ------------------------------------------------------------------ data keys


@pytest.mark.parametrize("sql, detail", [
    ("UPDATE lifecycle_keys SET wrapped = NULL WHERE aggregate_id = ?",
     "erased without an erasure event"),
    ("DELETE FROM lifecycle_keys WHERE aggregate_id = ?", "data key row deleted"),
], ids=["nulled", "deleted"])
def test_key_nulled_or_deleted_is_reported(story: tuple[LifecycleEngine, Raw], sql: str,
                                           detail: str) -> None:
    engine, raw = story
    raw.run(sql, aid("acme"))
    report = verify(engine)
    assert found(report.breaks) == [("deleted", "customer", "acme")]
    assert detail in report.breaks[0].detail


def test_key_with_a_flipped_byte_is_reported(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    key = bytearray(wrapped(raw, "beta"))
    key[20] ^= 1
    raw.run("UPDATE lifecycle_keys SET wrapped = ? WHERE aggregate_id = ?", bytes(key),
            aid("beta"))
    report = verify(engine)
    assert found(report.breaks) == [("modified", "customer", "beta")]
    assert "does not open with the master key bound to this customer" in \
        report.breaks[0].detail


def test_keys_swapped_or_copied_between_customers_are_reported(
        story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    acme, beta = wrapped(raw, "acme"), wrapped(raw, "beta")
    raw.run("UPDATE lifecycle_keys SET wrapped = ? WHERE aggregate_id = ?", beta, aid("acme"))
    raw.run("UPDATE lifecycle_keys SET wrapped = ? WHERE aggregate_id = ?", acme, aid("beta"))
    assert sorted(found(verify(engine).breaks)) == [("modified", "customer", "acme"),
                                                    ("modified", "customer", "beta")]
    raw.run("UPDATE lifecycle_keys SET wrapped = ? WHERE aggregate_id = ?", acme, aid("acme"))
    assert found(verify(engine).breaks) == [("modified", "customer", "beta")]  # a copy


def test_key_replaced_by_another_key_of_the_customer_is_reported(
        story: tuple[LifecycleEngine, Raw]) -> None:
    """Even a key wrapped by the right master key for the right customer must open the
    customer's sealed events (a holder of the master key replacing it)."""
    engine, raw = story
    assert engine.writer.keyring is not None
    other = engine.writer.keyring.wrap(aid("acme"), os.urandom(32))
    raw.run("UPDATE lifecycle_keys SET wrapped = ? WHERE aggregate_id = ?", other, aid("acme"))
    report = verify(engine)
    assert found(report.breaks) == [("modified", "customer", "acme")]
    assert "does not open the customer's sealed events" in report.breaks[0].detail


def test_an_erasure_verifies_clean_and_a_restored_key_is_reported(
        story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    before = wrapped(raw, "acme")
    engine.erase(customer="acme", reason="request 1", actor="dpo")
    assert verify(engine).clean
    raw.run("UPDATE lifecycle_keys SET wrapped = ?, erased_at = NULL WHERE aggregate_id = ?",
            before, aid("acme"))
    report = verify(engine)
    assert found(report.breaks) == [("forged", "customer", "acme")]
    assert "present although the customer was erased" in report.breaks[0].detail


def test_cli_reports_a_nulled_key(story: tuple[LifecycleEngine, Raw], url: str) -> None:
    _, raw = story
    raw.run("UPDATE lifecycle_keys SET wrapped = NULL WHERE aggregate_id = ?", aid("acme"))
    proc = cli(url, "audit", "verify", "--csv", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "deleted,customer,acme,,,data key erased without an erasure event" in proc.stdout


# ------------------------------------------------------------------ the master key


def test_master_key_fingerprint_deleted_is_reported_and_another_key_refused(
        story: tuple[LifecycleEngine, Raw], url: str, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
) -> None:
    engine, raw = story
    raw.run("DELETE FROM lifecycle_master_key")
    report = verify(engine)
    assert found(report.breaks) == [("deleted", "keys", "master_key")]
    engine.close()
    other = MasterKey.generate().text()
    # another key: refused, in the library and the CLI, nothing wrapped under it
    monkeypatch.setenv("LIFECYCLE_ES_MASTER_KEY", other)
    with pytest.raises(MasterKeyError, match=r"fingerprint .* is gone"):
        LifecycleEngine(url)
    lines = tmp_path / "new.jsonl"
    lines.write_text(orjson.dumps({"type": "customer_registered", "customer": "new",
                                   "name": "New", "segment": "smb", "source": "web",
                                   **WHO}).decode() + "\n")
    proc = cli(url, "import", str(lines), check=False, env={**os.environ})
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "does not open them" in proc.stderr and other not in proc.stderr
    assert raw.run("SELECT COUNT(*) FROM lifecycle_master_key")[0][0] == 0
    # the store's own key still opens it, and verify keeps reporting the missing row
    monkeypatch.undo()
    again = LifecycleEngine(url)
    try:
        again.register(customer="new", name="New", segment="smb", source="web", **WHO)
        assert again.customer("acme").state.name == "Acme"
        assert found(verify(again).breaks) == [("deleted", "keys", "master_key")]
        with pytest.raises(MasterKeyError, match=r"fingerprint \(lifecycle_master_key\) is gone"):
            again.rotate_master_key(MasterKey.generate())
    finally:
        again.close()


# ------------------------------------------------------------------ snapshots


@pytest.fixture
def snapshotted(durable_store_url: str, monkeypatch: pytest.MonkeyPatch,
                ) -> Iterator[tuple[LifecycleEngine, Raw, str]]:
    """Customer ``s`` with MRR 3000 and a snapshot at version 5 (the issue's
    reproduction: ``LIFECYCLE_ES_SNAPSHOT_EVERY=5``)."""
    monkeypatch.setenv("LIFECYCLE_ES_SNAPSHOT_EVERY", "5")
    engine = LifecycleEngine(durable_store_url)
    engine.register(customer="s", name="Snap", segment="smb", source="web", **WHO)
    engine.purchase(customer="s", plan="pro", mrr=3000, currency="EUR",
                    contract_start="2025-03-01", contract_end="2026-03-01", **WHO)
    for _ in range(4):
        engine.check_in(customer="s", **WHO)
    raw = Raw(durable_store_url, engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
    table = "lifecycle_snapshots" if raw.pg else "stored_snapshots"
    assert [r[0] for r in raw.run(f"SELECT originator_version FROM {table}")] == [5]
    assert verify(engine).clean
    yield engine, raw, table
    raw.conn.close()
    engine.close()


def snapshot_state(raw: Raw, table: str, version: int = 5) -> bytes:
    return bytes(raw.run(f"SELECT state FROM {table} WHERE originator_version = ?",
                         version)[0][0])


def untrusted(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.msg for r in caplog.records if isinstance(r.msg, dict)
            and r.msg.get("event") == "snapshot.untrusted"]


def test_an_edited_snapshot_is_never_acted_on_and_is_reported(
        snapshotted: tuple[LifecycleEngine, Raw, str], caplog: pytest.LogCaptureFixture,
) -> None:
    engine, raw, table = snapshotted
    state = snapshot_state(raw, table)
    assert b'"mrr":3000' in state
    raw.run(f"UPDATE {table} SET state = ?", state.replace(b'"mrr":3000', b'"mrr":900000'))
    caplog.set_level(logging.WARNING, logger="lifecycle_es")
    with pytest.raises(InvariantViolation, match="larger than the MRR 3000"):
        engine.contraction(customer="s", mrr_delta=500_000, **WHO)
    assert engine.customer("s").state.mrr == 3000
    assert [(m["version"], m["reason"]) for m in untrusted(caplog)][:1] == [(5, "altered")]
    report = verify(engine)
    assert [(b.kind, b.key, b.version) for b in report.breaks] == [("modified", "s", 5)]
    # the replay that refused it snapshotted version 6 afresh (signed, clean)
    assert "fails its MAC" in report.breaks[0].detail and report.snapshots == 2


def test_a_snapshot_copied_to_another_version_is_reported(
        snapshotted: tuple[LifecycleEngine, Raw, str]) -> None:
    engine, raw, table = snapshotted
    engine.check_in(customer="s", **WHO)  # version 7: the copy's version exists
    raw.run(f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            f"SELECT originator_id, 6, topic, state FROM {table} WHERE originator_version = 5")
    assert engine.customer("s").state.mrr == 3000
    assert [(b.kind, b.key, b.version) for b in verify(engine).breaks] == [
        ("modified", "s", 6)]


def test_an_unsigned_snapshot_is_compared_with_the_fold(
        snapshotted: tuple[LifecycleEngine, Raw, str]) -> None:
    """A snapshot without a MAC (as written before they were signed) is never used, and
    verifies clean when it equals the fold of its events; a bogus one is reported."""
    engine, raw, table = snapshotted
    data = orjson.loads(snapshot_state(raw, table))
    del data["_mac"]
    raw.run(f"UPDATE {table} SET state = ?", orjson.dumps(data))
    assert verify(engine).clean  # a legacy snapshot: equal to the fold
    assert engine.customer("s").origin.replayed == 6  # but not used
    data["state"]["customer"]["mrr"] = 900000
    raw.run(f"UPDATE {table} SET state = ?", orjson.dumps(data))
    assert engine.customer("s").state.mrr == 3000
    report = verify(engine)
    assert [(b.kind, b.key, b.version) for b in report.breaks] == [("forged", "s", 5)]
    assert "differs from the fold" in report.breaks[0].detail


def test_a_snapshot_past_the_customers_last_version_is_reported(
        snapshotted: tuple[LifecycleEngine, Raw, str]) -> None:
    engine, raw, table = snapshotted
    raw.run(f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            f"SELECT originator_id, 99, topic, state FROM {table} WHERE originator_version = 5")
    assert [(b.kind, b.key, b.version) for b in verify(engine).breaks] == [
        ("forged", "s", 99)]


def test_unsigned_snapshots_of_one_customer_are_each_compared(
        snapshotted: tuple[LifecycleEngine, Raw, str]) -> None:
    """Several unsigned snapshots of a customer, a void between them reaching back: each is
    compared with the fold at its own version."""
    engine, raw, table = snapshotted
    engine.void_event(customer="s", voided_version=3, reason="wrong", **WHO)  # version 7
    for _ in range(3):
        engine.check_in(customer="s", **WHO)
    versions = [r[0] for r in raw.run(f"SELECT originator_version FROM {table} "
                                      "ORDER BY originator_version")]
    assert versions == [5, 7, 10]  # the void snapshots at once
    for version in versions:
        data = orjson.loads(snapshot_state(raw, table, version))
        del data["_mac"]
        if version == 10:
            data["state"]["customer"]["paying"] = not data["state"]["customer"]["paying"]
        raw.run(f"UPDATE {table} SET state = ? WHERE originator_version = ?",
                orjson.dumps(data), version)
    assert [(b.kind, b.key, b.version) for b in verify(engine).breaks] == [
        ("forged", "s", 10)]
