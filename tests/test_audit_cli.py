"""`lifecycle-es audit ...` on SQLite and PostgreSQL, and SQL injection through every filter."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from audit_story import Story, tell
from cli_helpers import cli as subprocess_cli
from cli_helpers import in_process as cli

from lifecycle_es import InvalidInput, LifecycleEngine, LifecycleError
from lifecycle_es.cli import output
from lifecycle_es.reading.audit.verify import verify

INJECTIONS = [
    "' OR '1'='1",
    "acme' --",
    "x'; DROP TABLE audit_index; --",
    "1; DELETE FROM event_digests",
    "\" OR 1=1 --",
    "%' OR 'a' LIKE '%",
    "1) OR (1=1",
]


@pytest.fixture
def store(durable_store_url: str) -> Iterator[tuple[str, Story]]:
    engine = LifecycleEngine(durable_store_url)
    story = tell(engine)
    engine.close()
    yield durable_store_url, story


def test_customer_timeline_json_and_csv(capsys: Any, monkeypatch: Any,
                                        store: tuple[str, Story]) -> None:
    code, out, _ = cli(capsys, monkeypatch, store[0], "audit", "customer", "acme", "--json")
    assert code == 0
    rows = orjson.loads(out)
    assert [r["version"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[2]["voided_by"] == 6 and rows[5]["voids"] == 3
    assert rows[3]["fields"]["plan"] == "pro" and rows[3]["correlation_id"] == "req-1"
    assert all(r["occurred_at"] and r["recorded_at"] for r in rows)
    code, out, _ = cli(capsys, monkeypatch, store[0], "audit", "customer", "acme", "--csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["type"] for r in table][:2] == ["customer_registered", "stage_changed"]
    assert table[2]["voided_by"] == "6"
    monkeypatch.setattr(output.console, "width", 250)  # room for every column
    code, out, _ = cli(capsys, monkeypatch, store[0], "audit", "customer", "acme")
    assert code == 0 and "VOIDED by v6" in out and "voids v3" in out


def test_customer_state_views(capsys: Any, monkeypatch: Any,
                              store: tuple[str, Story]) -> None:
    url, story = store

    def state(*args: str) -> dict[str, Any]:
        code, out, err = cli(capsys, monkeypatch, url, "audit", "customer", "acme", "--json",
                             *args)
        assert code == 0, err
        return orjson.loads(out)[0]  # type: ignore[no-any-return]

    known = state("--as-known-at", story.t1.isoformat())
    assert (known["owner"], known["mrr"], known["last_nps"]) == ("bob", 5000, None)
    of = state("--as-of", "2024-01-25")
    assert (of["owner"], of["paying"], of["last_nps"]) == ("bob", False, 9)
    now = state("--state")
    assert now["owner"] is None and [h["handover_id"] for h in now["open_handovers"]] == ["h1"]
    assert state("--version", "2")["stage"] == "consideration"


def test_events_pages_with_cursor(capsys: Any, monkeypatch: Any,
                                  store: tuple[str, Story]) -> None:
    url, _ = store
    seen: list[int] = []
    after: list[str] = []
    while True:
        code, out, err = cli(capsys, monkeypatch, url, "audit", "events", "--limit", "4",
                             "--order", "oldest", "--json", *after)
        assert code == 0
        seen += [r["position"] for r in orjson.loads(out)]
        if "next page" not in err:
            break
        after = ["--after", err.split("--after")[1].split()[0]]
    assert len(seen) == 10 and seen == sorted(seen)
    code, out, _ = cli(capsys, monkeypatch, url, "audit", "events", "--actor", "bob",
                       "--type", "purchase", "--type", "handover_sent", "--since",
                       "2024-02-01", "--until", "2024-02-10T09:00:00", "--csv")
    assert [r["type"] for r in csv.DictReader(io.StringIO(out))] == ["handover_sent",
                                                                     "purchase"]


@pytest.mark.parametrize("args, message", [
    (["events", "--type", "stage_change"], "type='stage_change'"),
    (["events", "--since", "2024-02-30"], "since='2024-02-30'"),
    (["events", "--customer", "nobody"], "customer='nobody'"),
    (["events", "--after", "next"], "after='next'"),
    (["customer", "nobody"], "customer='nobody'"),
    (["customer", "acme", "--as-of", "last week"], "as_of='last week'"),
    (["customer", "acme", "--version", "99"], "version=99"),
])
def test_bad_filters_are_one_line_and_exit_2(capsys: Any, monkeypatch: Any,
                                             store: tuple[str, Story], args: list[str],
                                             message: str) -> None:
    code, out, err = cli(capsys, monkeypatch, store[0], "audit", *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_verify_exit_codes_and_heads(capsys: Any, monkeypatch: Any,
                                     store: tuple[str, Story]) -> None:
    url, _ = store
    code, out, err = cli(capsys, monkeypatch, url, "audit", "verify", "--print-heads")
    assert code == 0 and "clean" in err and len(out.splitlines()) == 1  # the heads alone
    anchor = out.strip()
    position, digest = anchor.split(":")
    assert int(position) > 0 and len(digest) == 64
    code, out, _ = cli(capsys, monkeypatch, url, "audit", "verify", "--anchor", anchor, "--json")
    assert code == 0 and orjson.loads(out)["clean"] is True
    engine = LifecycleEngine(url)
    table = engine.writer.recorder.events_table_name  # type: ignore[attr-defined]
    nid = "rowid" if url.startswith("sqlite") else "notification_id"
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(engine.store.path) as db:
            db.execute(f"DELETE FROM {table} WHERE {nid} = 3")
    else:
        from lifecycle_es.stores.postgres import connect

        with connect(engine.store, autocommit=True) as conn:
            conn.execute(f'DELETE FROM "{engine.store.schema}".{table} WHERE {nid} = 3')
    engine.close()
    code, out, _ = cli(capsys, monkeypatch, url, "audit", "verify", "--json")
    assert code == 1
    assert [(b["kind"], b["key"], b["version"]) for b in orjson.loads(out)["breaks"]] == [
        ("deleted", "acme", 3)]


FILTERS = ["--customer", "--actor", "--team", "--type", "--since", "--until", "--correlation",
           "--campaign", "--after", "--order"]


@pytest.mark.parametrize("injection", INJECTIONS)
def test_sql_injection_through_every_cli_filter(capsys: Any, monkeypatch: Any,
                                                store: tuple[str, Story],
                                                injection: str) -> None:
    url, _ = store
    for option in FILTERS:
        code, out, err = cli(capsys, monkeypatch, url, "audit", "events", option, injection,
                             "--json")
        assert (code == 0 and orjson.loads(out) == []) or (code == 2 and out == ""), (
            option, code, out, err)
    for args in (["customer", injection], ["customer", "acme", "--as-of", injection],
                 ["customer", "acme", "--as-known-at", injection]):
        code, out, _ = cli(capsys, monkeypatch, url, "audit", *args, "--json")
        assert code == 2 and out == ""
    _assert_intact(url)


@pytest.mark.parametrize("injection", INJECTIONS)
def test_sql_injection_through_the_library(store: tuple[str, Story], injection: str) -> None:
    url, _ = store
    engine = LifecycleEngine(url)
    try:
        for name in ("actor", "team", "correlation_id", "campaign"):
            assert engine.audit.events(**{name: injection}).events == []  # type: ignore[arg-type]
        for kwargs in ({"customer": injection}, {"types": [injection]}, {"since": injection},
                       {"until": injection}, {"after": injection}, {"order": injection}):
            with pytest.raises(LifecycleError):
                engine.audit.events(**kwargs)  # type: ignore[arg-type]
        for call in (lambda: engine.audit.timeline(injection),
                     lambda: engine.audit.state(injection),
                     lambda: engine.audit.state("acme", as_of=injection),
                     lambda: engine.audit.state("acme", as_known_at=injection)):
            with pytest.raises(LifecycleError):
                call()
        with pytest.raises(InvalidInput):
            verify(engine, anchor=injection)
    finally:
        engine.close()
    _assert_intact(url)


def _assert_intact(url: str) -> None:
    engine = LifecycleEngine(url)
    try:
        assert len(engine.history("acme")) == 7 and len(engine.history("beta")) == 2
        assert len(engine.audit.events(limit=100).events) == 10
        assert verify(engine).clean
    finally:
        engine.close()


@pytest.mark.slow
def test_real_process_exit_codes(store: tuple[str, Story]) -> None:
    url, _ = store
    assert subprocess_cli(url, "audit", "verify").returncode == 0
    proc = subprocess_cli(url, "audit", "events", "--type", "nope", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
