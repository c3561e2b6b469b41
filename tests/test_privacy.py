"""Crypto-shredding: personal fields sealed per customer, erasure proven on the stores' bytes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate, parse_all
from lifecycle_es.domain import customer_id
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.errors import InvalidInput, InvariantViolation
from lifecycle_es.privacy import ERASED, erased_document
from lifecycle_es.reading.audit.verify import verify
from lifecycle_es.stores.url import StoreURL

#: one distinctive string per personal field of every event class that has one
SECRETS = {
    "name": "Zyx-NAME-qv81", "touch": "Zyx-TOUCHNOTE-qv82", "stage": "Zyx-STAGEREASON-qv83",
    "release": "Zyx-RELEASE-qv84", "doc": "Zyx-DOCNOTE-qv85", "goal": "Zyx-DOCGOAL-qv86",
    "reject": "Zyx-REJECT-qv87", "nps": "Zyx-NPS-qv88", "csat": "Zyx-CSAT-qv89",
    "checkin": "Zyx-CHECKIN-qv90", "details": "Zyx-DETAILS-qv91", "void": "Zyx-VOID-qv92",
    "churn": "Zyx-CHURN-qv93",
}


def _at(day: int) -> str:
    return f"2024-03-{day:02d}T10:00:00Z"


def write_secrets(engine: LifecycleEngine, key: str = "zed") -> None:
    """A customer with a distinctive string in every personal field."""
    s = SECRETS
    m = {"actor": "ann", "team": "marketing", "customer": key}
    engine.register(**m, at=_at(1), name=s["name"], segment="smb", source="web")
    engine.register(**{**m, "customer": "friend"}, at=_at(1), name="Friend", segment="smb",
                    source="web")
    engine.touchpoint(**m, at=_at(2), channel="email", notes=s["touch"])
    engine.change_stage(**m, at=_at(3), to_stage="consideration", reason=s["stage"])
    engine.assign_owner(**m, at=_at(4), owner="ann")
    engine.release_owner(**m, at=_at(5), reason=s["release"])
    engine.send_handover(**m, at=_at(6), handover_id="h1", from_team="marketing",
                         to_team="sales", document={"goals": [s["goal"]], "notes": s["doc"]})
    engine.reject_handover(**{**m, "team": "sales"}, at=_at(7), handover_id="h1",
                           reason=s["reject"])
    engine.purchase(**{**m, "team": "sales"}, at=_at(8), plan="pro", mrr=5000,
                    currency="EUR", contract_start="2024-03-08", contract_end="2025-03-07")
    engine.nps_answer(**m, at=_at(9), score=9, comment=s["nps"])
    engine.csat_answer(**m, at=_at(10), score=4, comment=s["csat"])
    engine.check_in(**m, at=_at(11), notes=s["checkin"])
    engine.give_advocacy(**m, at=_at(12), kind="referral", referred_customer="friend",
                         details=s["details"])
    engine.void_event(**m, at=_at(13), voided_version=12, reason=s["void"])
    engine.churn(**m, at=_at(14), reason=s["churn"])


def _hits(blobs: dict[str, bytes]) -> dict[str, list[str]]:
    return {where: found for where, data in blobs.items()
            if (found := [k for k, v in SECRETS.items() if v.encode() in data])}


def sqlite_bytes(url: str) -> dict[str, bytes]:
    """Every file of the SQLite store (database, write-ahead log, shared memory)."""
    path = Path(StoreURL.parse(url).path)
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


def postgres_bytes(url: str) -> dict[str, bytes]:
    """``COPY ... TO STDOUT`` of every table of the store's two schemas."""
    import psycopg

    store = StoreURL.parse(url)
    out: dict[str, bytes] = {}
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s)",
            ([store.schema, f"{store.schema}_read"],)).fetchall()
        assert len(tables) > 10
        for schema, table in tables:
            data = bytearray()
            with conn.cursor().copy(f'COPY "{schema}"."{table}" TO STDOUT') as copy:
                for chunk in copy:
                    data += chunk
            out[f"{schema}.{table}"] = bytes(data)
    return out


def raw_events(engine: LifecycleEngine) -> dict[str, bytes]:
    return {f"event {e.originator_version}": bytes(e.state)
            for e in engine.event_log.stored(customer_id("zed"))}


def personal_values(engine: LifecycleEngine) -> list[Any]:
    """Every personal field of the customer's events, as the API reads them."""
    return [getattr(e, f) for e in engine.history("zed") for f in type(e).PERSONAL]


@pytest.fixture(params=["sqlite", "postgres"])
def engine_url(request: pytest.FixtureRequest,
               store_url_factory: Callable[[str], str]) -> Iterator[tuple[LifecycleEngine, str]]:
    url = store_url_factory(str(request.param))
    engine = LifecycleEngine(url)
    yield engine, url
    engine.close()


def test_erasure_leaves_no_personal_byte_in_the_store(
        engine_url: tuple[LifecycleEngine, str]) -> None:
    engine, url = engine_url
    write_secrets(engine)
    engine.projections.catch_up()
    # before: every string reads back through the API, and none is in the stored events
    text = json.dumps(personal_values(engine))
    assert all(v in text for v in SECRETS.values())
    assert _hits(raw_events(engine)) == {}
    store_bytes = sqlite_bytes if url.startswith("sqlite") else postgres_bytes
    assert _hits(store_bytes(url)), "the read models hold names and documents in clear"

    engine.erase(customer="zed", reason="GDPR request 2024-118", actor="dpo")

    assert _hits(store_bytes(url)) == {}
    values = personal_values(engine)
    assert {str(v) for v in values} <= {ERASED, str(erased_document()), "None"}
    assert ERASED in values and erased_document() in values
    assert engine.customer("zed").state.name == ERASED
    assert verify(engine).clean
    # the other customer, referred by the erased one, is untouched
    assert engine.customer("friend").state.name == "Friend"


def test_an_erased_key_is_gone_for_a_fresh_engine_and_in_the_table(
        engine_url: tuple[LifecycleEngine, str]) -> None:
    """Not only the erasing engine's key cache: the stored key itself is gone."""
    from test_audit_verify import Raw

    engine, url = engine_url
    write_secrets(engine)
    engine.erase(customer="zed", reason="GDPR request", actor="dpo")
    raw = Raw(url, engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
    try:
        rows = raw.run("SELECT wrapped, erased_at FROM lifecycle_keys WHERE aggregate_id = ?",
                       str(customer_id("zed")))
        friend = raw.run("SELECT wrapped FROM lifecycle_keys WHERE aggregate_id = ?",
                         str(customer_id("friend")))
    finally:
        raw.conn.close()
    assert len(rows) == 1 and rows[0][0] is None and rows[0][1]
    assert friend[0][0] is not None  # the test reads the right table
    fresh = LifecycleEngine(url)
    try:
        assert fresh.customer("zed").state.name == ERASED
        assert {str(v) for v in [getattr(e, f) for e in fresh.history("zed")
                                 for f in type(e).PERSONAL]} <= {
            ERASED, str(erased_document()), "None"}
        assert fresh.customer("friend").state.name == "Friend"
    finally:
        fresh.close()


def test_a_rebuild_after_erasure_reads_what_the_erasure_left(
        engine_url: tuple[LifecycleEngine, str]) -> None:
    engine, _ = engine_url
    write_secrets(engine)
    engine.erase(customer="zed", reason="GDPR request", actor="dpo")
    tables = ["current_stage", "handover_history", "audit_index"]

    def rows(t: str) -> list[dict[str, Any]]:  # in key order: a rebuild stores by aggregate
        return engine.projections.fetch(t, order=", ".join(engine.projections.table(t).key))

    before = {t: rows(t) for t in tables}
    engine.projections.rebuild()
    assert {t: rows(t) for t in tables} == before
    row = engine.projections.fetch("handover_history")[0]
    assert row["document"] == erased_document() and row["reject_reason"] == ERASED


def test_commands_on_an_erased_customer_are_refused(
        store_url_factory: Callable[[str], str]) -> None:
    engine = LifecycleEngine(store_url_factory("sqlite"))
    try:
        write_secrets(engine)
        engine.erase(customer="zed", reason="GDPR request", actor="dpo")
        m = {"actor": "ann", "team": "marketing", "customer": "zed", "at": _at(20)}
        with pytest.raises(InvariantViolation, match=r"was erased on .* new external id"):
            engine.check_in(**m, notes="hello")
        with pytest.raises(InvariantViolation, match="was erased"):
            engine.register(**m, name="Again", segment="smb", source="web")
        with pytest.raises(InvariantViolation, match="was erased"):
            engine.erase(customer="zed", reason="twice")
        engine.register(**{**m, "customer": "zed-2"}, name="Again", segment="smb",
                        source="web")
        assert engine.customer("zed-2").state.name == "Again"
        with pytest.raises(InvalidInput, match="reason"):
            engine.erase(customer="zed-2", reason="")
    finally:
        engine.close()


def test_a_customer_written_before_encryption_cannot_be_erased(
        store_url_factory: Callable[[str], str]) -> None:
    url = store_url_factory("sqlite")
    old = LifecycleEngine(url, encrypt=False)
    old.register(customer="old", at=_at(1), actor="ann", team="marketing", name="Old Name",
                 segment="smb", source="web")
    old.close()
    engine = LifecycleEngine(url)
    try:
        assert engine.customer("old").state.name == "Old Name"  # still reads
        with pytest.raises(InvariantViolation, match="written before encryption"):
            engine.erase(customer="old", reason="GDPR request")
        engine.register(customer="new", at=_at(1), actor="ann", team="marketing",
                        name="New Name", segment="smb", source="web")
        states = [bytes(e.state) for e in engine.event_log.stored(customer_id("new"))]
        assert b"New Name" not in states[0]
        engine.erase(customer="new", reason="GDPR request")
        assert engine.customer("new").state.name == ERASED
    finally:
        engine.close()


UNTIL = date(2026, 11, 1)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_erasing_ten_demo_customers_changes_no_non_personal_figure(
        kind: str, store_url_factory: Callable[[str], str]) -> None:
    url = store_url_factory(kind)
    engine = LifecycleEngine(url)
    engine.record_many(parse_all(generate(500, 7, CLASSIC, UNTIL)))
    engine.close()
    queries = [
        ("metrics", "--from", "2024-01-01", "--to", "2026-10-31", "--json"),
        ("stage", "--json"),
        ("gaps", "--as-of", "2026-11-01", "--json"),
        ("health", "--as-of", "2026-11-01", "--json"),
        ("handovers", "--json"),
    ]

    def answers() -> list[Any]:
        out = [json.loads(cli(url, *q).stdout) for q in queries]
        for row in out[4]:  # handovers: the document is personal data
            row.pop("document", None)
            row.pop("reject_reason", None)
        return out

    before = answers()
    names = [r["customer"] for r in before[3][:10]]  # ten customers with health scores
    for name in names:
        proc = cli(url, "erase", name, "--reason", "GDPR request", "--actor", "dpo", "--json",
                   "--yes")
        assert json.loads(proc.stdout)["erased"] is True
    assert answers() == before
    assert "clean" in cli(url, "audit", "verify").stdout + cli(url, "audit", "verify").stderr
    stage = json.loads(cli(url, "stage", "--customer", names[0], "--json").stdout)
    text = json.dumps(stage)
    assert ERASED in text


def test_the_master_key_is_checked_and_said_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    monkeypatch.delenv("LIFECYCLE_ES_MASTER_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    env = {k: v for k, v in os.environ.items()}
    first = cli(url, "init", env=env)
    key_file = tmp_path / "config" / "lifecycle-es" / "master.key"
    assert f"created the master key file {key_file}" in first.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "created" not in cli(url, "stage", env=env).stderr  # said once
    # another key: the store says which key it wants and which it got
    other = cli(url, "keys", "new-master").stdout.strip()
    wrong = cli(url, "stage", check=False, env={**env, "LIFECYCLE_ES_MASTER_KEY": other})
    assert wrong.returncode == 3
    assert "encrypted under master key" in wrong.stderr and other not in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    # no key at all
    key_text = key_file.read_text().strip()
    key_file.unlink()
    missing = cli(url, "stage", check=False, env=env)
    assert missing.returncode == 3 and "no master key is configured" in missing.stderr
    assert not key_file.exists()
    bad = cli(url, "stage", check=False, env={**env, "LIFECYCLE_ES_MASTER_KEY": "c2hvcnQ="})
    assert bad.returncode == 3 and "5 bytes, not 32" in bad.stderr
    # a key file named in the environment
    named = tmp_path / "mine.key"
    named.write_text(key_text + "\n")
    named.chmod(0o600)  # a key file others can read is refused (test_private_files.py)
    assert cli(url, "keys", "status", env={**env, "LIFECYCLE_ES_MASTER_KEY_FILE": str(named)}
               ).stdout.startswith("master key ")


def test_rotating_the_master_key_rewraps_every_data_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = LifecycleEngine(url)
    write_secrets(engine)
    engine.close()
    new = cli(url, "keys", "new-master").stdout.strip()
    (tmp_path / "new.key").write_text(new)
    (tmp_path / "new.key").chmod(0o600)
    out = cli(url, "keys", "rotate-master", "--new-key-file", str(tmp_path / "new.key"))
    assert "re-wrapped 2 data keys" in out.stdout and new not in out.stdout
    old_key = cli(url, "stage", check=False)
    assert old_key.returncode == 3 and "encrypted under master key" in old_key.stderr
    env = {**os.environ, "LIFECYCLE_ES_MASTER_KEY": new}
    history = json.loads(cli(url, "audit", "customer", "zed", "--json", env=env).stdout)
    assert SECRETS["checkin"] in json.dumps(history)
    again = cli(url, "keys", "rotate-master", check=False, env=env)
    assert again.returncode == 3 and "--new-key-file" in again.stderr


def test_an_altered_keys_table_gives_one_clear_error(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = LifecycleEngine(url)
    write_secrets(engine)
    engine.close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        conn.execute("UPDATE lifecycle_keys SET wrapped = zeroblob(60)")
    proc = cli(url, "audit", "customer", "zed", check=False)
    assert proc.returncode == 3
    assert "does not open with master key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_import_through_the_writer_process_seals_and_erases(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'i.db'}"
    lines = [json.dumps(c) for c in generate(60, 3, CLASSIC, UNTIL)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    engine = LifecycleEngine(url)
    try:
        result = engine.import_file(str(tmp_path / "in.jsonl"), batch_size=100)
        assert result.events > 200  # several batches: the writer process wrote most
        names = {json.loads(line)["customer"]: json.loads(line)["name"] for line in lines
                 if json.loads(line)["type"] == "customer_registered"}
        states = b"".join(bytes(n.state) for n in engine.event_log.page(1, 100_000))
        assert not [n for n in names.values() if n.encode() in states]
        first = sorted(names)[0]
        assert engine.customer(first).state.name == names[first]
        engine.erase(customer=first, reason="GDPR request")
        assert engine.customer(first).state.name == ERASED
    finally:
        engine.close()


@pytest.mark.parametrize("args, code, words", [
    (("erase", "zed", "--reason", "req\x07"), 2, "reason="),
    (("erase", "zed", "--reason", "r" * 100_000), 2, "reason="),
    (("erase", "zed", "--reason", ""), 2, "reason="),
    (("erase", "nobody\u200b", "--reason", "req"), 2, "customer="),
    (("erase", "nobody", "--reason", "req"), 2, "no such customer"),
    (("keys", "rotate-master", "--new-key-file", "/nonexistent/new.key"), 3, "does not exist"),
])
def test_hostile_erasures_write_nothing(tmp_path: Path, args: tuple[str, ...], code: int,
                                        words: str) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = LifecycleEngine(url)
    write_secrets(engine)
    head = engine.event_log.head()
    engine.close()
    proc = cli(url, *args, check=False)
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    engine = LifecycleEngine(url)
    try:
        assert engine.event_log.head() == head
        assert engine.customer("zed").state.name == SECRETS["name"]
    finally:
        engine.close()


def test_many_customers_read_right_with_few_ciphers_kept(tmp_path: Path) -> None:
    """The keyring keeps raw keys and only the last few ciphers (each an OpenSSL context of
    ~2.6 KB): hundreds of customers still read their own names, and an erased one's cipher
    is not used again."""
    from lifecycle_es.commands import build_command
    from lifecycle_es.stores.keys import CIPHERS_KEPT

    url = f"sqlite:///{tmp_path / 'many.db'}"
    writer = LifecycleEngine(url)
    writer.record_many([build_command("customer_registered", {
        "customer": f"c{i}", "name": f"Person {i}", "segment": "smb", "source": "web",
        "at": _at(1), "actor": "ann", "team": "sales"}) for i in range(3 * CIPHERS_KEPT)])
    writer.close()
    reader = LifecycleEngine(url)
    try:
        for i in range(3 * CIPHERS_KEPT):
            assert reader.customer(f"c{i}").state.name == f"Person {i}"
        assert reader.writer.keyring is not None
        assert len(reader.writer.keyring._ciphers) <= CIPHERS_KEPT
        reader.history("c7")  # its cipher is among the last used
        reader.erase(customer="c7", reason="asked")
        assert reader.history("c7")[0].name == ERASED  # type: ignore[attr-defined]
        assert reader.customer("c8").state.name == "Person 8"
    finally:
        reader.close()
