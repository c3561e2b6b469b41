"""The codec honours the library's extension points: the cipher and compressor configured in
the environment (``CIPHER_TOPIC``/``CIPHER_KEY``, ``COMPRESSOR_TOPIC``) on every write path,
and ``class_version`` upcasting on every read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.cryptography import AESCipher
from lifecycle_samples import FULL_LIFECYCLE, jsonl

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.customer import Customer
from lifecycle_es.reading.audit.verify import verify

SECRET_NAME = "Zyxwvut Distinctive Name"
AT = {"at": "2024-03-01T09:00:00Z", "actor": "ann", "team": "sales"}


def raw_states(engine: LifecycleEngine) -> list[bytes]:
    """Every stored event's state, read with the plain driver."""
    store, table = engine.store, engine.writer.recorder.events_table_name  # type: ignore[attr-defined]
    if store.kind == "sqlite":
        with sqlite3.connect(store.path) as conn:
            return [bytes(r[0]) for r in conn.execute(f"SELECT state FROM {table}")]
    with psycopg.connect(store.psycopg_conninfo()) as conn:
        rows = conn.execute(f'SELECT state FROM "{store.schema}".{table}').fetchall()
        return [bytes(r[0]) for r in rows]


@pytest.fixture
def cipher_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CIPHER_TOPIC", "eventsourcing.cryptography:AESCipher")
    monkeypatch.setenv("CIPHER_KEY", AESCipher.create_key(32))
    yield


def write_both_ways(url: str, customers: int) -> LifecycleEngine:
    """One customer by single commands, then a bulk import large enough to start the
    import's writer process (``batch_size`` small)."""
    engine = LifecycleEngine(url)
    engine.register(customer="solo", name=SECRET_NAME, segment="smb", source="web", **AT)
    engine.check_in(customer="solo", notes=f"{SECRET_NAME} said hello", **AT)
    lines = [
        {"type": "customer_registered", "customer": f"bulk-{i}", "name": f"{SECRET_NAME} {i}",
         "segment": "smb", "source": "web", **AT}
        for i in range(customers)
    ]
    engine.import_lines(jsonl(lines).splitlines(), batch_size=50)
    return engine


def test_cipher_encrypts_every_write_path(durable_store_url: str, cipher_env: None) -> None:
    engine = write_both_ways(durable_store_url, 400)
    try:
        states = raw_states(engine)
        assert len(states) == 402
        assert not any(SECRET_NAME.encode() in s for s in states)
        assert not any(b'"customer"' in s for s in states)  # not even the JSON keys
        assert engine.customer("solo").state.name == SECRET_NAME
        assert engine.customer("bulk-399").state.name == f"{SECRET_NAME} 399"
        engine.projections.rebuild()
        rows = engine.projections.read.fetchall(
            "SELECT customer, stage FROM current_stage ORDER BY customer")
        assert len(rows) == 401
        assert verify(engine).clean
    finally:
        engine.close()


def test_full_lifecycle_reads_back_encrypted(store_url: str, cipher_env: None) -> None:
    plain = LifecycleEngine("memory://")
    plain.import_lines(jsonl(FULL_LIFECYCLE).splitlines())
    engine = LifecycleEngine(store_url)
    try:
        engine.import_lines(jsonl(FULL_LIFECYCLE).splitlines())
        assert engine.customer("acme").state == plain.customer("acme").state
        def facts(e: Any) -> dict[str, Any]:
            return {k: v for k, v in vars(e).items() if k != "timestamp"}  # recording time

        assert [facts(e) for e in engine.history("acme")] == [
            facts(e) for e in plain.history("acme")]
    finally:
        engine.close()
        plain.close()


def test_wrong_key_never_gives_garbage(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    monkeypatch.setenv("CIPHER_TOPIC", "eventsourcing.cryptography:AESCipher")
    monkeypatch.setenv("CIPHER_KEY", AESCipher.create_key(32))
    LifecycleEngine(url).register(customer="acme", name="Acme", segment="smb", source="web",
                                  **AT)
    monkeypatch.setenv("CIPHER_KEY", AESCipher.create_key(32))
    with pytest.raises(Exception) as info:
        LifecycleEngine(url).customer("acme")
    assert "Acme" not in str(info.value)


def test_compressor_from_environment(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    engine = LifecycleEngine(store_url)
    try:
        engine.import_lines(jsonl(FULL_LIFECYCLE).splitlines())
        if store_url != "memory://":
            assert all(s[:1] == b"x" for s in raw_states(engine))  # zlib's header byte
        assert engine.customer("acme").state.mrr > 0
    finally:
        engine.close()


def test_upcaster_reads_old_events(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = LifecycleEngine(store_url)
    try:
        engine.register(customer="acme", name="Acme", segment="smb", source="web", **AT)
        engine.check_in(customer="acme", notes="all good", **AT)
        cls = Customer.CheckedIn

        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["summary"] = state.pop("notes")

        monkeypatch.setattr(cls, "class_version", 2, raising=False)
        monkeypatch.setattr(cls, "upcast_v1_v2", staticmethod(upcast_v1_v2), raising=False)
        old = engine.history("acme")[-1]
        assert isinstance(old, cls)
        assert vars(old)["summary"] == "all good" and "notes" not in vars(old)
        # a new event of the class is stored at version 2 and read without upcasting again
        new = engine.writer.mapper.to_stored_event(old)
        assert b'"class_version":2' in new.state
        again = engine.writer.mapper.to_domain_event(new)
        assert vars(again)["summary"] == "all good"
        assert again.occurred_at == old.occurred_at  # type: ignore[attr-defined]
    finally:
        engine.close()
