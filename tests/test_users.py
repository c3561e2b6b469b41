"""People of the console: ``lifecycle-es users`` on SQLite and PostgreSQL. Every change is an
audited event; the password is read from stdin or a prompt, kept only as an argon2 hash
sealed in the store, and shown nowhere (list, audit, logs, errors)."""

from __future__ import annotations

import io
import sys

import orjson
import pytest
from cli_helpers import in_process

from lifecycle_es import LifecycleEngine
from lifecycle_es.stores.url import StoreURL

PASSWORD = "a long enough secret phrase"


def _cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str,
         *args: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return in_process(capsys, monkeypatch, url, "--log-level", "DEBUG", *args)


def _stored_bytes(url: str) -> bytes:
    """Every stored byte of the events (the raw table, as the database holds it)."""
    parsed = StoreURL.parse(url)
    if parsed.kind == "sqlite":
        import sqlite3

        with sqlite3.connect(parsed.path) as conn:
            rows = conn.execute("SELECT state FROM stored_events").fetchall()
    else:
        import psycopg

        with psycopg.connect(host=parsed.host, port=parsed.port, dbname=parsed.dbname,
                             user=parsed.user) as conn:
            rows = conn.execute(
                f"SELECT state FROM {parsed.schema}.lifecycle_events").fetchall()
    assert rows
    return b"".join(bytes(r[0]) for r in rows)


def test_users_add_list_role_disable(durable_store_url: str, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url = durable_store_url
    code, out, err = _cli(capsys, monkeypatch, url, "users", "add", "ann", "--team", "success",
                          "--role", "lead", "--password-stdin", "--actor", "root",
                          stdin=PASSWORD + "\n")
    assert code == 0, err
    assert "added user 'ann'" in out
    code, out, err = _cli(capsys, monkeypatch, url, "users", "role", "ann", "admin",
                          "--actor", "root")
    assert code == 0, err
    code, out, err = _cli(capsys, monkeypatch, url, "users", "password", "ann",
                          "--password-stdin", "--actor", "ann", stdin="another long phrase!\n")
    assert code == 0, err
    code, out, err = _cli(capsys, monkeypatch, url, "users", "list", "--json")
    assert code == 0, err
    rows = orjson.loads(out)
    assert [(r["name"], r["team"], r["role"], r["disabled"], r["changed_by"]) for r in rows] \
        == [("ann", "success", "admin", False, "ann")]
    code, out, err = _cli(capsys, monkeypatch, url, "audit", "events", "--json")
    assert code == 0, err
    audit = orjson.loads(out)
    events = audit if isinstance(audit, list) else audit["events"]
    assert [(e["type"], e["actor"]) for e in events][:3] == [
        ("user_password_changed", "ann"), ("user_role_changed", "root"),
        ("user_added", "root")]
    engine = LifecycleEngine(url, create=False)
    try:
        stored = engine.user("ann").password_hash or ""
        assert stored.startswith("$argon2")
        assert engine.authenticate("ann", "another long phrase!") is not None
        assert engine.authenticate("ann", PASSWORD) is None  # the old one no longer
    finally:
        engine.close()
    code, out, err = _cli(capsys, monkeypatch, url, "users", "disable", "ann", "--reason",
                          "left", "--actor", "root")
    assert code == 0, err
    engine = LifecycleEngine(url, create=False)
    try:
        assert engine.authenticate("ann", "another long phrase!") is None
    finally:
        engine.close()
    code, out, err = _cli(capsys, monkeypatch, url, "users", "list", "--json")
    assert orjson.loads(out)[0]["disabled"] is True
    raw = _stored_bytes(url)
    assert stored.encode() not in raw and b"$argon2" not in raw  # sealed, not in clear
    assert PASSWORD.encode() not in raw


def test_bad_input_says_one_line_and_writes_nothing(
        durable_store_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = durable_store_url
    cases = [
        (["--team", "success", "--role", "king"], PASSWORD, "role='king'"),
        (["--team", "nowhere", "--role", "member"], PASSWORD, "user_team='nowhere'"),
        (["--team", "success", "--role", "member"], "short", "password='[hidden]'"),
    ]
    for options, password, said in cases:
        code, out, err = _cli(capsys, monkeypatch, url, "users", "add", "bob", *options,
                              "--password-stdin", stdin=password + "\n")
        assert code == 2, (options, err)
        assert said in err and "Traceback" not in err
        if password != PASSWORD:
            assert password not in err
    code, out, err = _cli(capsys, monkeypatch, url, "users", "add", "bob", "--team", "sales",
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0, err
    for args in (["users", "role", "bob", "member"], ["users", "role", "nobody", "lead"],
                 ["users", "add", "bob", "--team", "sales", "--password-stdin"]):
        code, out, err = _cli(capsys, monkeypatch, url, *args, stdin=PASSWORD + "\n")
        assert code == 2 and err.splitlines()[-1].startswith("error: "), (args, err)
    code, out, _ = _cli(capsys, monkeypatch, url, "users", "list", "--json")
    assert [(r["name"], r["role"]) for r in orjson.loads(out)] == [("bob", "member")]


def test_no_hash_or_password_in_any_output_or_log(
        durable_store_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = durable_store_url
    outputs = []
    for args in (["users", "add", "cy", "--team", "support", "--password-stdin"],
                 ["users", "password", "cy", "--password-stdin"],
                 ["users", "list"], ["users", "list", "--csv"],
                 ["audit", "events", "--json"], ["audit", "events"]):
        code, out, err = _cli(capsys, monkeypatch, url, *args, stdin=PASSWORD + "\n")
        assert code == 0, (args, err)
        outputs.append(out + err)
    text = "\n".join(outputs)
    assert PASSWORD not in text and "$argon2" not in text and "password_hash=" not in text
    assert "user_added" in text  # the audit rows are there, without the hash
