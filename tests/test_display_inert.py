"""What the CLI shows is what is stored: no markup, no emoji codes, no terminal escapes.

Customers, actors, teams, owners, notes, handover people, plans and stage names hold rich
markup (valid input) and control characters. Control characters are refused by the commands,
so they are put into the stored events and the stored stage model with plain SQL, as a
hostile writer with database access would. Every query of the CLI then prints each value
literally (non-printable characters as their escapes, see docs/audit.md), on SQLite and
PostgreSQL, at a terminal width of 120 and on a wide one.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import CLI, in_process
from hypothesis import given
from hypothesis import strategies as st
from test_report import parse

from lifecycle_es import LifecycleEngine, StageModel, logs
from lifecycle_es.cli import output
from lifecycle_es.display import json_visible, visible
from lifecycle_es.domain import Stage
from lifecycle_es.stores.url import StoreURL

KEY = "LIFECYCLE_ES_MASTER_KEY"
MARKUP = ["[/]", "[link=https://evil.example/x]ann[/link]", "[bold red]x[/]", ":warning:",
          "<script>alert(1)</script>"]
CONTROL = ["\x1b[31mred\x1b[0m", "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07", "a\rb",
           "\x07", "\u202eevil", "\x9b31m", "zero\u200bwidth", "tab\there"]
NUL = "nul\x00byte"  # SQLite only: PostgreSQL text cannot hold NUL at all
TOKEN = "ZC{}Z"  # written by the commands, replaced by CONTROL[i] in the stored data
CLIENT = "[bold red]client[/]"  # a paying stage, owned by team TOKEN 0
LATER = "stage " + TOKEN.format(1)  # a paying stage, its name a control token


def tokens(kind: str) -> list[str]:
    return [TOKEN.format(i) for i in range(len(CONTROL) + (kind == "sqlite"))]


def stored(kind: str) -> dict[str, str]:
    """token -> the control value that replaces it in the store."""
    values = CONTROL + ([NUL] if kind == "sqlite" else [])
    return dict(zip(tokens(kind), values, strict=True))


def real(value: str, kind: str) -> str:
    """The value as stored (tokens replaced)."""
    for token, control in stored(kind).items():
        value = value.replace(token, control)
    return value


def shown(value: str, kind: str) -> str:
    """The value as the CLI must show it."""
    return visible(real(value, kind))


def customers(kind: str) -> list[str]:
    return [*MARKUP, *(f"id-{t}" for t in tokens(kind))]


def hostile(kind: str) -> list[str]:
    """The hostile values (markup, or a token of a control value)."""
    return [*MARKUP, *tokens(kind)]


def model(kind: str) -> StageModel:
    teams = ["marketing", "sales", "success", "support", *hostile(kind)]
    return StageModel(name="hostile", teams=teams, stages=[
        Stage(name="lead", team="[/]", stall_after_days=30),
        Stage(name=CLIENT, team=TOKEN.format(0), paying=True),
        Stage(name=LATER, team="success", paying=True),
    ])


def write_story(url: str, kind: str) -> str:
    """Per hostile value v: a customer whose id, name, actor, team, owner, notes, handover
    and plan all hold v; it is paying in stage CLIENT with a handover pending since 2024.
    Returns the name of the events table. Written without encryption, so that the tamper
    step reaches every field (a store written before encryption holds such bytes)."""
    engine = LifecycleEngine(url, stage_model=model(kind), encrypt=False)
    try:
        for cust, v in zip(customers(kind), hostile(kind), strict=True):
            who = {"customer": cust, "actor": v, "team": v}
            engine.register(**who, at="2024-01-02T09:00:00Z", name=f"name {v}", segment="smb",
                            source="web")
            engine.check_in(**who, at="2024-01-03T09:00:00Z", notes=f"note {v}")
            engine.assign_owner(**who, at="2024-01-04T09:00:00Z", owner=f"owner {v}")
            engine.send_handover(**who, at="2024-01-05T09:00:00Z", handover_id=f"h {v}",
                                 from_team=v, to_team="success", to_person=f"person {v}",
                                 document={"notes": f"doc {v}"})
            engine.purchase(**who, at="2024-02-01T09:00:00Z", plan=f"plan {v}", mrr=1000,
                            currency="USD", contract_start="2024-02-01",
                            contract_end="2025-02-01")
            engine.change_stage(**who, at="2024-02-02T09:00:00Z", to_stage=CLIENT)
        engine.change_stage(customer="[/]", actor="[/]", team="[/]",
                            at="2024-03-01T09:00:00Z", to_stage=LATER)
        return str(engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
    finally:
        engine.close()


def tamper(url: str, kind: str, table: str) -> None:
    """Replace every token by its control value in the stored events and stage model."""
    subs = [(t.encode(), orjson.dumps(v)[1:-1]) for t, v in stored(kind).items()]

    def swap(data: bytes) -> bytes:
        for token, value in subs:
            data = data.replace(token, value)
        return data

    store = StoreURL.parse(url)
    if kind == "sqlite":
        conn: Any = sqlite3.connect(store.path)
        ph, prefix = "?", ""
    else:
        import psycopg

        conn = psycopg.connect(store.psycopg_conninfo())
        ph, prefix = "%s", f'"{store.schema}".'
    with conn:
        rows = conn.execute(f"SELECT originator_id, originator_version, state FROM "
                            f"{prefix}{table}").fetchall()
        for oid, version, state in rows:
            conn.execute(f"UPDATE {prefix}{table} SET state = {ph} WHERE "
                         f"originator_id = {ph} AND originator_version = {ph}",
                         (swap(bytes(state)), oid, version))
        (setting,) = conn.execute(f"SELECT value FROM {prefix}lifecycle_settings WHERE "
                                  f"key = 'stage_model'").fetchone()
        conn.execute(f"UPDATE {prefix}lifecycle_settings SET value = {ph} WHERE "
                     "key = 'stage_model'", (swap(setting.encode()).decode(),))
    conn.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hostile_store(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(url, kind): the hostile story, tampered, read models rebuilt from it."""
    kind = str(request.param)
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('inert') / 'hostile.db'}"
    else:
        import uuid

        from conftest import PG_URL, drop_schema, need_postgres

        need_postgres()
        schema = f"t_inert_{uuid.uuid4().hex[:8]}"
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    try:
        tamper(url, kind, write_story(url, kind))
        engine = LifecycleEngine(url)
        try:
            engine.projections.rebuild()
        finally:
            engine.close()
        yield url, kind
    finally:
        if kind == "postgres":
            drop_schema(schema)


# ------------------------------------------------------------------ reading the output


def rows_of(out: str) -> list[list[str]]:
    """The data rows of every rich table in ``out`` (one line per row: a wide console)."""
    return [[cell.strip() for cell in line.split("│")[1:-1]]
            for line in out.splitlines() if line.startswith("│")]


def cells(out: str) -> set[str]:
    return {c for row in rows_of(out) for c in row}


def assert_inert(out: str) -> None:
    """Nothing a terminal would act on: every character printable (or a line break)."""
    bad = sorted({repr(c) for c in out if not (c.isprintable() or c == "\n")})
    assert not bad, f"non-printable characters {bad} in:\n{out[:3000]}"
    assert "\x1b]8;" not in out and "evil.example\x07" not in out


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        hostile_store: tuple[str, str]) -> Any:
    """Run a CLI query at width 120 and at a width fitting every row on one line; both must
    exit with ``code`` and print nothing but printable text. Returns the wide output."""
    url, _ = hostile_store

    def query(*args: str, code: int = 0) -> tuple[str, str]:
        wide: tuple[str, str] = ("", "")
        for width in (120, 2000):
            monkeypatch.setattr(output.console, "width", width)
            monkeypatch.setattr(output.err_console, "width", width)
            got, out, err = in_process(capsys, monkeypatch, url, *args)
            assert got == code, f"{args}: exit {got}: {err}"
            assert_inert(out)
            assert_inert(err)
            wide = (out, err)
        return wide

    return query


# ------------------------------------------------------------------ the queries


def test_stage_counts_show_stage_and_team_names(cli: Any, hostile_store: tuple[str, str]
                                                ) -> None:
    kind = hostile_store[1]
    out, _ = cli("stage")
    got = {(r[0], r[1]): r[2] for r in rows_of(out)}
    assert got[(CLIENT, shown(TOKEN.format(0), kind))] == str(len(customers(kind)) - 1)
    assert got[(shown(LATER, kind), "success")] == "1"
    assert ("lead", "[/]") in got


@pytest.mark.parametrize("index", [5, 6, 7])  # control values, stored by plain SQL
def test_a_stored_id_with_control_characters_is_refused_inertly(
        cli: Any, hostile_store: tuple[str, str], index: int) -> None:
    """An id no command can create (docs/commands.md, "Limits") cannot be asked for either:
    the refusal names it with its characters made visible."""
    kind = hostile_store[1]
    cust = customers(kind)[index]
    _, err = cli("stage", "--customer", real(cust, kind), code=2)
    assert "not allowed in an id" in err


@pytest.mark.parametrize("index", [0, 1])  # markup values
def test_stage_of_one_customer(cli: Any, hostile_store: tuple[str, str], index: int) -> None:
    kind = hostile_store[1]
    cust, v = customers(kind)[index], hostile(kind)[index]
    out, _ = cli("stage", "--customer", real(cust, kind))
    stage = shown(LATER, kind) if cust == "[/]" else CLIENT
    values = {line.split(None, 1)[1] for line in out.splitlines()[1:] if " " in line}
    assert {shown(cust, kind), shown(f"name {v}", kind), shown(f"owner {v}", kind),
            stage} <= values  # one record: field/value lines
    assert out.splitlines()[0] == f"customer {shown(cust, kind)}"  # the title


def test_handovers_table_and_json(cli: Any, hostile_store: tuple[str, str]) -> None:
    kind = hostile_store[1]
    out, _ = cli("handovers", "--pending")
    rows = rows_of(out)
    for cust, v in zip(customers(kind), hostile(kind), strict=True):
        assert [shown(cust, kind), shown(f"h {v}", kind), shown(v, kind), "success",
                shown(f"person {v}", kind), "pending"] in [[r[0], *r[2:7]] for r in rows]
    out, _ = cli("handovers", "--json")
    data = orjson.loads(out)  # JSON carries the exact stored values
    assert {(h["customer"], h["to_person"], h["document"]["notes"]) for h in data} == {
        (real(c, kind), real(f"person {v}", kind), real(f"doc {v}", kind))
        for c, v in zip(customers(kind), hostile(kind), strict=True)}


def test_gaps_and_health(cli: Any, hostile_store: tuple[str, str]) -> None:
    kind = hostile_store[1]
    out, _ = cli("gaps", "--as-of", "2024-06-01")
    stale = {(r[0], r[2]): r for r in rows_of(out)}  # customer, name, kind, ..., stage (9)
    for cust, v in zip(customers(kind), hostile(kind), strict=True):
        row = stale[(shown(cust, kind), "handover_stale")]
        assert row[6] == "success" and row[7] == shown(f"person {v}", kind)
        assert row[9] == (shown(LATER, kind) if cust == "[/]" else CLIENT)
    out, _ = cli("health", "--as-of", "2024-06-01")
    seen = {(r[0], r[4], r[5]) for r in rows_of(out)}  # customer, name, score, band, ...
    for cust, v in zip(customers(kind)[1:], hostile(kind)[1:], strict=True):
        assert (shown(cust, kind), CLIENT, shown(f"owner {v}", kind)) in seen
    out, _ = cli("health", "--customer", "[link=https://evil.example/x]ann[/link]",
                 "--as-of", "2024-06-01")
    assert "[link=https://evil.example/x]ann[/link]:" in out  # the title


def test_metrics_funnel_cohorts_time_in_stage(cli: Any, hostile_store: tuple[str, str]
                                              ) -> None:
    kind = hostile_store[1]
    cli("metrics", "--from", "2024-01-01", "--to", "2025-01-01")
    cli("cohorts", "--as-of", "2024-12-01")
    out, _ = cli("funnel")
    assert {(r[0], r[1]) for r in rows_of(out)} >= {
        ("lead", "[/]"), (CLIENT, shown(TOKEN.format(0), kind)), (shown(LATER, kind), "success")}
    out, _ = cli("time-in-stage", "--as-of", "2024-06-01")
    assert {CLIENT, shown(LATER, kind)} <= {r[0] for r in rows_of(out)}
    out, _ = cli("time-in-stage", "--customer", "[/]", "--as-of", "2024-06-01")
    assert "Stage history of [/]" in out and shown(LATER, kind) in cells(out)


def test_audit_customer_timeline_and_state(cli: Any, hostile_store: tuple[str, str]) -> None:
    out, _ = cli("audit", "customer", "[/]")
    rows = rows_of(out)
    assert "customer [/]" in out
    assert {(r[1], r[4], r[5]) for r in rows} >= {("customer_registered", "[/]", "[/]"),
                                                  ("check_in", "[/]", "[/]")}
    fields = " ".join(r[6] for r in rows)
    assert '"notes":"note [/]"' in fields and '"name":"name [/]"' in fields
    out, _ = cli("audit", "customer", "[bold red]x[/]", "--state")
    assert {"[bold red]x[/]", "owner [bold red]x[/]", CLIENT} <= cells(out)


def test_audit_events_every_value(cli: Any, hostile_store: tuple[str, str]) -> None:
    kind = hostile_store[1]
    cli("audit", "events")  # the default page (the one that crashed on "[/]")
    out, _ = cli("audit", "events", "--limit", "1000")
    by_actor = {(r[2], r[6], r[7]) for r in rows_of(out)}
    for cust, v in zip(customers(kind), hostile(kind), strict=True):
        assert (shown(cust, kind), shown(v, kind), shown(v, kind)) in by_actor
    actor = "[link=https://evil.example/x]ann[/link]"
    out, _ = cli("audit", "events", "--actor", actor)
    assert {r[6] for r in rows_of(out)} == {actor} and len(rows_of(out)) == 6
    out, _ = cli("audit", "events", "--json", "--limit", "1000")
    assert {(e["customer"], e["actor"]) for e in orjson.loads(out)} == {
        (real(c, kind), real(v, kind)) for c, v in zip(customers(kind), hostile(kind),
                                                       strict=True)}


def test_csv_is_exact_for_programs_and_escaped_on_a_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        hostile_store: tuple[str, str]) -> None:
    url, kind = hostile_store
    args = ("audit", "events", "--csv", "--limit", "1000")
    code, out, _ = in_process(capsys, monkeypatch, url, *args)
    actors = {r["actor"] for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and actors == {real(v, kind) for v in hostile(kind)}
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, _ = in_process(capsys, monkeypatch, url, *args)
    assert_inert(out.replace("\r\n", "\n"))  # csv's own line ends
    assert {r["actor"] for r in csv.DictReader(io.StringIO(out))} == {
        shown(v, kind) for v in hostile(kind)}


def test_projections_status_and_verify(cli: Any) -> None:
    out, _ = cli("projections", "status")
    assert "audit_index" in cells(out) or "audit_index" in out
    cli("audit", "verify", code=1)  # the tampering is a break: shown as inert lines


def test_error_lines_are_inert(cli: Any, tmp_path: Path) -> None:
    _, err = cli("audit", "customer", "[bold]nobody[/bold]", code=2)
    assert "'[bold]nobody[/bold]'" in err
    _, err = cli("stage", "--customer", "ghost\x1b[31m:warning:", code=2)
    assert "ghost\\x1b[31m:warning:" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "check_in", "customer": "[/]", "at": "2024-01-01T00:00:00Z", '
                   '"actor": "[/]", "team": "[/]", "\\u001b[31mkey": "\\u001b]8;;x\\u0007"}\n'
                   '{"type": "\\u001b[2Jwipe"}\n')
    _, err = cli("import", str(bad), code=2)
    assert "\\x1b[31mkey" in err and "\\x1b[2Jwipe" in err and "nothing was written" in err


def test_html_report_escapes_every_value(hostile_store: tuple[str, str],
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url, kind = hostile_store
    out = tmp_path / "r.html"
    code, _, err = in_process(capsys, monkeypatch, url, "report", "--out", str(out),
                              "--from", "2024-01-01", "--to", "2025-01-01", "--as-of",
                              "2024-06-01")
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    assert "<script>alert" not in page and "[link=" in page
    assert html.escape("<script>alert(1)</script>") in page  # shown, as text
    assert_inert(page)
    for v in (TOKEN.format(0), LATER):  # a team and a stage name
        assert html.escape(shown(v, kind)) in page
    assert "<script" not in page  # no script, no data island: it holds what it shows
    doc = parse(page)
    stages = {str(a["data-label"]) for a in doc.find("rect") if a.get("data-label")}
    assert shown(LATER, kind) in stages  # an attribute is inert too: escaped, shown
    assert "<script>alert(1)</script>" in {r.attrs["data-customer"] for r in doc.rows("health")}


def test_real_terminal_width(hostile_store: tuple[str, str]) -> None:
    """The real process at COLUMNS=120: the default events page and a customer's timeline."""
    url, _ = hostile_store
    for args in (["audit", "events"], ["audit", "customer", "[/]"]):
        proc = subprocess.run([*CLI, "--store", url, *args], capture_output=True, text=True,
                              timeout=120, env={"COLUMNS": "120", "PATH": "/usr/bin:/bin",
                                   "LIFECYCLE_ES_MASTER_KEY": os.environ[KEY]})
        assert proc.returncode == 0, proc.stderr
        assert_inert(proc.stdout)
        assert max(len(line) for line in proc.stdout.splitlines()) <= 120


# ------------------------------------------------------------------ the escaping rule


@pytest.mark.parametrize("value, expected", [
    ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
    ("nul\x00", "nul\\x00"), ("a\rb", "a\\rb"), ("a\nb\tc", "a\\nb\\tc"), ("\x07", "\\x07"),
    ("\x7f\x9b", "\\x7f\\x9b"), ("zero\u200bwidth", "zero\\u200bwidth"),
    ("\u202eevil", "\\u202eevil"), ("tag\U000e0041", "tag\\U000e0041"),
    ("[/] [link=x]a[/link] :warning:", "[/] [link=x]a[/link] :warning:"),
    ("café 東京 C:\\path 🙂 <b>", "café 東京 C:\\path 🙂 <b>"),
])
def test_visible_known_answers(value: str, expected: str) -> None:
    assert visible(value) == expected
    assert output.inert(value).plain == expected


@given(st.text())
def test_visible_is_printable_and_keeps_printable_text(text: str) -> None:
    shown_text = visible(text)
    assert shown_text.isprintable()
    assert (shown_text == text) == text.isprintable()


@given(st.text())
def test_json_visible_is_the_same_json_value(text: str) -> None:
    encoded = json_visible(orjson.dumps({"v": text}).decode())
    assert orjson.loads(encoded) == {"v": text} and encoded.isprintable()


def test_console_log_lines_are_inert(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal logs are key=value lines: stored text in them is escaped too."""
    logger = logging.getLogger("lifecycle_es")
    saved = (logger.handlers, logger.level, logger.propagate)
    logs.configure("INFO", json=False)
    try:
        logs.get_logger("lifecycle_es.test").info("projection.failed",
                                                  customer="\x1b]8;;https://evil.example\x07x")
    finally:
        logger.handlers, logger.level, logger.propagate = saved
    err = capsys.readouterr().err
    assert "customer=\\x1b]8;;https://evil.example\\x07x" in err and "\x1b" not in err
