"""JSON Lines import on SQLite and PostgreSQL: all or nothing, every bad line reported with
its line number, field and reason, batched writes, and what a store failure mid-write leaves."""

from __future__ import annotations

import contextlib
import glob
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from lifecycle_samples import ACME_VERSION, FULL_LIFECYCLE, jsonl

from lifecycle_es import LifecycleEngine, StoreError
from lifecycle_es.errors import InvalidInput, UnknownCustomer
from lifecycle_es.reading.audit.verify import verify

AT = {"at": "2024-03-01T09:00:00Z", "actor": "ann", "team": "sales"}


@pytest.fixture
def durable(durable_store_url: str) -> Iterator[LifecycleEngine]:
    eng = LifecycleEngine(durable_store_url)
    yield eng
    eng.close()


def written(engine: LifecycleEngine) -> int:
    return engine.writer.recorder.max_notification_id() or 0


def line(type_: str, customer: str = "acme", **fields: Any) -> dict[str, Any]:
    return {"type": type_, "customer": customer, **AT, **fields}


REGISTER = line("customer_registered", name="Acme", segment="smb", source="web")


def test_valid_file_imports_every_command(durable: LifecycleEngine,
                                          durable_store_url: str) -> None:
    result = durable.import_lines(jsonl(FULL_LIFECYCLE).splitlines())
    assert (result.commands, result.events) == (len(FULL_LIFECYCLE), len(FULL_LIFECYCLE))
    assert (result.customers_created, result.campaigns_created) == (2, 1)
    assert result.by_type["handover_sent"] == 2
    assert sum(result.by_type.values()) == len(FULL_LIFECYCLE)
    assert written(durable) == len(FULL_LIFECYCLE)

    # The same history through the library gives the same state (memory store).
    library = LifecycleEngine("memory://")
    for cmd in FULL_LIFECYCLE:
        library.record(cmd["type"], **{k: v for k, v in cmd.items() if k != "type"})
    reopened = LifecycleEngine(durable_store_url)
    try:
        assert reopened.customer("acme").state == library.customer("acme").state
        assert reopened.customer("acme").version == ACME_VERSION
        assert [e.TYPE for e in reopened.history("acme")] == [
            e.TYPE for e in library.history("acme")]
    finally:
        reopened.close()


def test_bad_file_reports_every_bad_line_and_writes_nothing(durable: LifecycleEngine) -> None:
    durable.register(customer="old", name="Old", segment="smb", source="web", **AT)
    before = written(durable)
    lines = [
        jsonl([REGISTER]),                                               # 1 ok
        '{"type": "payment", "customer": "acme"\n',                      # 2 not JSON
        jsonl([line("unknown_thing")]),                                  # 3 type
        jsonl([line("customer_registered", customer="b", segment="s", source="w")]),  # 4
        jsonl([line("nps_answer", score=42)]),                           # 5 value
        jsonl([line("check_in", team="legal")]),                         # 6 team
        "\n",                                                            # 7 blank: skipped
        jsonl([line("purchase", customer="ghost", plan="p", mrr=1, currency="EUR",
                    contract_start="2024-03-01", contract_end="2024-04-01")]),  # 8
        jsonl([line("handover_sent", handover_id="h1", from_team="sales",
                    to_team="success")]),                                # 9 ok
        jsonl([line("handover_accepted", handover_id="h1", team="success")]),  # 10 ok
        jsonl([line("handover_accepted", handover_id="h1", team="success")]),  # 11 twice
        jsonl([line("churned")]),                                        # 12 not paying
        jsonl([line("csat_answer", score=9, mood="x")]),                 # 13 two problems
        jsonl([line("customer_registered", customer="old", name="O", segment="s",
                    source="w")]),                                       # 14 exists
        jsonl([line("check_in", customer="old")]),                       # 15 ok
    ]
    with pytest.raises(InvalidInput) as info:
        durable.import_lines("".join(lines).splitlines(keepends=True))
    got = [(p.line, p.field) for p in info.value.problems]
    assert got == [(2, "command"), (3, "type"), (4, "name"), (5, "score"), (6, "team"),
                   (8, "customer"), (11, "handover_id"), (12, "type"), (13, "score"),
                   (13, "mood"), (14, "customer")]
    by_line = {p.line: p for p in info.value.problems}
    assert "Invalid JSON" in by_line[2].reason
    assert (by_line[3].value, by_line[3].reason) == ("unknown_thing", "unknown command type")
    assert by_line[5].value == 42 and "less than or equal to 10" in by_line[5].reason
    assert by_line[6].value == "legal" and "unknown team" in by_line[6].reason
    assert by_line[8].value == "ghost" and "no such customer" in by_line[8].reason
    assert "already accepted" in by_line[11].reason
    assert "already registered" in by_line[14].reason
    assert "line 2: command=" in str(info.value) and "(and 8 more)" in str(info.value)
    assert written(durable) == before
    with pytest.raises(UnknownCustomer):
        durable.customer("acme")
    assert len(durable.history("old")) == 1


def test_rule_problems_alone_are_reported_with_line_numbers(durable: LifecycleEngine) -> None:
    text = jsonl([
        REGISTER,
        line("payment", amount=100, currency="EUR"),
        line("payment", amount=100, currency="USD"),         # 3: second currency
        line("won_back", mrr=5),                             # 4: not churned
        line("event_voided", voided_version=9, reason="x"),  # 5: no such event
        line("stage_changed", to_stage="churned"),           # 6: churned is not a target
    ])
    with pytest.raises(InvalidInput) as info:
        durable.import_lines(text.splitlines())
    assert [(p.line, p.field, p.value) for p in info.value.problems] == [
        (3, "currency", "USD"), (4, "type", "won_back"), (5, "voided_version", 9),
        (6, "to_stage", "churned")]
    assert written(durable) == 0


def test_lines_are_checked_against_earlier_lines_of_the_same_file(
    durable: LifecycleEngine,
) -> None:
    """Validity depends on order: a void may refer to a version created earlier in the file."""
    text = jsonl([
        REGISTER,
        line("nps_answer", score=3),
        line("event_voided", voided_version=2, reason="wrong survey"),
        line("event_voided", voided_version=2, reason="again"),   # 4: already voided
    ])
    with pytest.raises(InvalidInput) as info:
        durable.import_lines(text.splitlines())
    assert [(p.line, p.field) for p in info.value.problems] == [(4, "voided_version")]
    assert written(durable) == 0
    durable.import_lines(text.splitlines()[:3])
    assert durable.customer("acme").state.last_nps is None


def test_import_onto_existing_history_continues_it(durable: LifecycleEngine) -> None:
    durable.import_lines(jsonl([REGISTER, line("stage_changed", to_stage="purchase")])
                         .splitlines())
    result = durable.import_lines(jsonl([
        line("purchase", plan="pro", mrr=100, currency="EUR", contract_start="2024-03-01",
             contract_end="2025-02-28"),
        line("churned", reason="price"),
    ]).splitlines())
    assert (result.commands, result.customers_created) == (2, 0)
    assert durable.customer("acme").version == 4
    assert durable.customer("acme").state.stage == "churned"


@pytest.mark.parametrize("batch_size", [1, 4, 1000])
def test_batch_size_changes_transactions_not_results(durable: LifecycleEngine,
                                                     batch_size: int) -> None:
    result = durable.import_lines(jsonl(FULL_LIFECYCLE).splitlines(), batch_size=batch_size)
    assert result.events == written(durable) == len(FULL_LIFECYCLE)
    assert durable.customer("acme").version == ACME_VERSION


def fail_on_version(engine: LifecycleEngine, version: int, *, conflict: bool) -> None:
    """Make the store itself refuse the event with ``version`` (a trigger), from any process.

    ``conflict``: refuse it as a version clash (a constraint violation) rather than as an error.
    """
    store, table = engine.store, engine.writer.recorder.events_table_name  # type: ignore[attr-defined]
    if store.kind == "sqlite":
        body = ("SELECT RAISE(ABORT, 'version taken')" if conflict
                else "SELECT abs(-9223372036854775808)")  # SQLite's 'integer overflow' error
        with sqlite3.connect(store.path) as conn:
            conn.execute(f"CREATE TRIGGER fail BEFORE INSERT ON {table} "
                         f"WHEN NEW.originator_version = {version} BEGIN {body}; END")
        return
    state = "unique_violation" if conflict else "disk_full"
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{store.schema}"')
        conn.execute(f"CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                     f"RAISE EXCEPTION 'disk full' USING ERRCODE = '{state}'; END $$")
        conn.execute(f"CREATE TRIGGER fail BEFORE INSERT ON {table} FOR EACH ROW "
                     f"WHEN (NEW.originator_version = {version}) EXECUTE FUNCTION fail()")


def remove_failure(engine: LifecycleEngine) -> None:
    store, table = engine.store, engine.writer.recorder.events_table_name  # type: ignore[attr-defined]
    if store.kind == "sqlite":
        with sqlite3.connect(store.path) as conn:
            conn.execute("DROP TRIGGER fail")
        return
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP TRIGGER fail ON "{store.schema}".{table}')


@pytest.mark.parametrize("batch_size", [5, 1000], ids=["writer-process", "in-process"])
def test_store_failure_mid_write_writes_nothing(durable: LifecycleEngine,
                                                batch_size: int) -> None:
    """The store fails on acme's event 12 (line 14), after two whole batches of 5 were
    inserted: the whole import is rolled back, and runs again once the cause is fixed."""
    fail_on_version(durable, 12, conflict=False)
    text = jsonl(FULL_LIFECYCLE)
    with pytest.raises(StoreError) as info:
        durable.import_lines(text.splitlines(), batch_size=batch_size)
    message = str(info.value)
    assert message.startswith("import failed, nothing written: ")
    assert ("integer overflow" if durable.store.kind == "sqlite" else "disk full") in message
    assert written(durable) == 0
    remove_failure(durable)
    durable.import_lines(text.splitlines(), batch_size=batch_size)
    assert durable.customer("acme").version == ACME_VERSION
    assert verify(durable).clean


@pytest.mark.parametrize("batch_size", [5, 1000], ids=["writer-process", "in-process"])
def test_version_clash_while_writing_is_reported_as_another_writer(
        durable: LifecycleEngine, batch_size: int) -> None:
    fail_on_version(durable, 12, conflict=True)
    with pytest.raises(StoreError, match="nothing written: another writer recorded events"):
        durable.import_lines(jsonl(FULL_LIFECYCLE).splitlines(), batch_size=batch_size)
    assert written(durable) == 0


def child_processes() -> list[int]:
    """Pids of this process's children (Linux /proc)."""
    me, found = os.getpid(), []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError), open(stat) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == me:
                found.append(int(stat.split("/")[2]))
    return found


def test_interrupted_import_writes_nothing_and_leaves_no_writer(
        durable: LifecycleEngine) -> None:
    """Ctrl-C (or any error of the caller) while the writer process holds batches."""
    before = set(child_processes())  # earlier tests may have left children of their own

    def lines() -> Iterator[str]:
        for n, text in enumerate(jsonl(FULL_LIFECYCLE).splitlines(), start=1):
            if n == 16:  # three batches of 5 are with the writer by now
                assert set(child_processes()) - before, "the writer process should run"
                raise KeyboardInterrupt
            yield text

    with pytest.raises(KeyboardInterrupt):
        durable.import_lines(lines(), batch_size=5)
    assert set(child_processes()) - before == set()
    assert written(durable) == 0
    durable.import_lines(jsonl(FULL_LIFECYCLE).splitlines(), batch_size=5)
    assert durable.customer("acme").version == ACME_VERSION


def test_a_script_without_main_guard_can_import(durable_store_url: str, tmp_path: Any) -> None:
    """The writer process must not re-run the caller's script (multiprocessing's spawn would)."""
    data = tmp_path / "history.jsonl"
    data.write_text(jsonl(FULL_LIFECYCLE))
    script = tmp_path / "load.py"
    script.write_text(
        "from lifecycle_es import LifecycleEngine\n"
        f"engine = LifecycleEngine({durable_store_url!r})\n"
        f"with open({str(data)!r}, 'rb') as fh:\n"
        "    print(engine.import_lines(fh, batch_size=5).events)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, str(len(FULL_LIFECYCLE))), done.stderr
    assert LifecycleEngine(durable_store_url).customer("acme").version == ACME_VERSION


def test_a_writer_that_cannot_start_is_a_store_error(durable: LifecycleEngine,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(StoreError, match="nothing written: cannot start the writer process"):
        durable.import_lines(jsonl(FULL_LIFECYCLE).splitlines(), batch_size=5)
    monkeypatch.undo()
    assert written(durable) == 0


def test_an_import_of_half_a_batch_or_less_starts_no_process(
        durable: LifecycleEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*_: Any) -> None:
        raise AssertionError("a writer process was started")

    monkeypatch.setattr("lifecycle_es.writing.bulk_write.WriterProcess", no_process)
    result = durable.import_lines(jsonl(FULL_LIFECYCLE).splitlines(),
                                  batch_size=2 * len(FULL_LIFECYCLE))
    assert result.events == written(durable) == len(FULL_LIFECYCLE)


def test_a_writer_process_starts_past_half_a_batch(durable_store_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the first batch is full, so that it has started when the batch is sent."""
    from lifecycle_es.writing import bulk_write

    started: list[int] = []

    class Counted(bulk_write.WriterProcess):
        def __init__(self, *args: Any) -> None:
            started.append(len(queued))
            super().__init__(*args)

    queued: list[str] = []

    def lines() -> Iterator[str]:
        for line in jsonl(FULL_LIFECYCLE).splitlines():
            yield line
            queued.append(line)

    monkeypatch.setattr(bulk_write, "WriterProcess", Counted)
    engine = LifecycleEngine(durable_store_url)
    try:
        result = engine.import_lines(lines(), batch_size=len(FULL_LIFECYCLE))
        assert result.events == written(engine) == len(FULL_LIFECYCLE)
    finally:
        engine.close()
    assert started == [len(FULL_LIFECYCLE) // 2]  # as the line after the half is checked


@pytest.mark.parametrize("batch_size", [3, 1000], ids=["writer-process", "in-process"])
def test_an_import_continues_the_store_and_its_chain(durable: LifecycleEngine,
                                                     batch_size: int) -> None:
    """The second import loads the stored customers and chains onto their stored heads."""
    text = jsonl(FULL_LIFECYCLE).splitlines()
    durable.import_lines(text[:12])
    result = durable.import_lines(text[12:], batch_size=batch_size)
    assert result.events == len(FULL_LIFECYCLE) - 12
    assert durable.customer("acme").version == ACME_VERSION
    report = verify(durable)
    assert report.clean and report.events == len(FULL_LIFECYCLE)
