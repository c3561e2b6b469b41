"""Issue 28: the CLI as a new user expects it — one command from the shell (`record`),
output a machine can trust, and care with what cannot be undone. Each reproduction of the
issue is a test here."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import CLI, cli, in_process, small_demo
from lifecycle_samples import FULL_LIFECYCLE, jsonl

from lifecycle_es import LifecycleEngine
from lifecycle_es.cli.output import duration
from lifecycle_es.commands import COMMANDS
from lifecycle_es.errors import InvalidInput

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

DOCS = Path(__file__).parent.parent / "docs"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return small_demo(tmp_path_factory, "newuser")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "80", **extra}


# ------------------------------------------------------------------ record


def options(command: dict[str, Any]) -> list[str]:
    """A command of the JSON Lines import as ``record TYPE --field value ...``."""
    args = ["record", command["type"]]
    for name, value in command.items():
        if name != "type":
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            args += [f"--{name.replace('_', '-')}", text]
    return args


def timeline(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every aggregate's events as (type, business time, actor, team, fields)."""
    engine = LifecycleEngine(url)
    try:
        return {c: [(e.type, e.occurred_at, e.actor, e.team, e.fields)
                    for e in engine.audit.timeline(c)] for c in ("acme", "globex")}
    finally:
        engine.close()


def test_every_command_type_recorded_from_the_shell_equals_its_import(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    assert {c["type"] for c in FULL_LIFECYCLE} == set(COMMANDS)  # every type, once or more
    recorded, imported = (f"sqlite:///{tmp_path / n}" for n in ("rec.db", "imp.db"))
    for command in FULL_LIFECYCLE:
        code, out, err = in_process(capsys, monkeypatch, recorded, *options(command))
        assert code == 0, (command, err)
        assert out.startswith(f"recorded {command['type']} for ")
    (tmp_path / "h.jsonl").write_text(jsonl(FULL_LIFECYCLE))
    cli(imported, "import", str(tmp_path / "h.jsonl"))
    assert timeline(recorded) == timeline(imported)


@pytest.mark.parametrize("type_", sorted(COMMANDS))
def test_record_help_lists_every_field_with_its_meaning(type_: str) -> None:
    out = subprocess.run([*CLI, "record", type_, "-h"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "250"}, check=True).stdout
    for name, field in COMMANDS[type_].model_fields.items():
        if name == "type":
            continue
        assert f"--{name.replace('_', '-')} " in out, name
        assert field.description and field.description.split("(")[0].strip() in out, name
    assert "LIFECYCLE_ES_ACTOR" in out and "(default: now)" in out


def test_actor_and_team_from_the_environment_at_now(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    env = {**os.environ, "LIFECYCLE_ES_ACTOR": "mia", "LIFECYCLE_ES_TEAM": "marketing"}
    cli(url, "record", "customer_registered", "--customer", "acme", "--name", "Acme",
        "--segment", "smb", "--source", "web", env=env)
    out = json.loads(cli(url, "record", "check_in", "--customer", "acme", "--team", "success",
                         "--json", env=env).stdout)
    assert out == {"type": "check_in", "customer": "acme", "version": 2}
    events = json.loads(cli(url, "audit", "customer", "acme", "--json").stdout)
    assert [(e["actor"], e["team"]) for e in events] == [("mia", "marketing"), ("mia", "success")]
    proc = cli(url, "record", "check_in", "--customer", "acme", check=False)  # no actor, team
    assert proc.returncode == 2 and "actor=None: Field required" in proc.stderr
    assert "LIFECYCLE_ES_ACTOR" in proc.stderr


REGISTER = {"type": "customer_registered", "customer": "acme", "at": "2024-02-02T10:00:00Z",
            "actor": "mia", "team": "marketing", "name": "Acme", "segment": "smb",
            "source": "web"}
WHO = {"customer": "acme", "at": "2024-03-01T10:00:00Z", "actor": "ann", "team": "sales"}


@pytest.mark.parametrize("command", [
    {"type": "nps_answer", **WHO, "score": 11},
    {"type": "nps_answer", **WHO, "score": "nine"},
    {"type": "payment", **WHO, "amount": 10 ** 30, "currency": "EUR"},
    {"type": "payment", **WHO, "amount": -1, "currency": "eur"},
    {"type": "check_in", **WHO, "notes": "a\x00b"},
    {"type": "check_in", **WHO, "notes": "n" * 100_000},
    {"type": "owner_assigned", **WHO, "owner": "[bold red]x\x1b[2J"},
    {"type": "check_in", **{**WHO, "customer": "acme\u200b"}},
    {"type": "check_in", **{**WHO, "at": "yesterday"}},
    {"type": "check_in", **{**WHO, "at": "2024-03-01T10:00:00"}},
    {"type": "stage_changed", **WHO, "to_stage": "nirvana"},
    {"type": "check_in", **{**WHO, "customer": "nobody"}},
    {"type": "check_in", **{**WHO, "team": "<script>"}},
    {"type": "handover_sent", **WHO, "handover_id": "h", "from_team": "sales",
     "to_team": "success", "document": {"goals": ["x"] * 101}},
], ids=lambda c: c["type"])
def test_hostile_values_same_error_as_the_import_nothing_written(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        command: dict[str, Any]) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = LifecycleEngine(url)
    engine.import_lines([json.dumps(REGISTER)])
    with pytest.raises(InvalidInput) as imported:  # the JSON Lines import's problems
        engine.import_lines([json.dumps(command)])
    head = engine.event_log.head()
    engine.close()
    code, out, err = in_process(capsys, monkeypatch, url, *options(command))
    problems = "; ".join(str(replace(p, line=None)) for p in imported.value.problems[:3])
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1] == f"error: invalid {command['type']}: {problems}"
    engine = LifecycleEngine(url)
    assert engine.event_log.head() == head  # nothing written
    engine.close()


@pytest.mark.parametrize("document, words", [
    ("[1", "document='[1': not JSON"), ('["goals"]', "expected a JSON object"),
    ('{"goals": "x", "bogus": 1}', "bogus="),
])
def test_a_bad_document_is_named(tmp_path: Path, document: str, words: str) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    proc = cli(url, "record", "handover_sent", "--customer", "acme", "--handover-id", "h",
               "--from-team", "sales", "--to-team", "success", "--document", document,
               "--actor", "ann", "--team", "sales", check=False)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------ output


def test_handovers_csv_document_is_json_the_same_on_every_store(
        durable_store_url: str, tmp_path: Path) -> None:
    (tmp_path / "h.jsonl").write_text(jsonl(FULL_LIFECYCLE))
    cli(durable_store_url, "import", str(tmp_path / "h.jsonl"))
    rows = list(csv.DictReader(io.StringIO(cli(durable_store_url, "handovers",
                                               "--csv").stdout)))
    as_json = json.loads(cli(durable_store_url, "handovers", "--json").stdout)
    for row, whole in zip(rows, as_json, strict=True):
        assert row["document"] == json.dumps(whole["document"], sort_keys=True,
                                             separators=(",", ":"), ensure_ascii=False)
        assert "'goals'" not in row["document"]  # not a Python repr
    timeline_csv = list(csv.DictReader(io.StringIO(cli(durable_store_url, "audit", "customer",
                                                       "acme", "--csv").stdout)))
    timeline_json = json.loads(cli(durable_store_url, "audit", "customer", "acme",
                                   "--json").stdout)
    assert [r["fields"] for r in timeline_csv] == [
        json.dumps(e["fields"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        for e in timeline_json]


def test_metrics_default_to_the_year_to_date_and_say_so(demo_store: str) -> None:
    proc = cli(demo_store, "metrics", env=_env(COLUMNS="200"))  # no --from/--to: no error
    assert "the year to date" in proc.stdout
    for command in ("funnel", "time-in-stage"):
        assert "the year to date" in cli(demo_store, command, env=_env(COLUMNS="200")).stdout
    assert "ever" in cli(demo_store, "funnel", "--ever").stdout


def test_metrics_csv_one_row_per_figure_and_currency(demo_store: str) -> None:
    period = ("--from", "2025-01-01", "--to", "2026-01-01")
    whole = json.loads(cli(demo_store, "metrics", *period, "--json").stdout)
    rows = list(csv.DictReader(io.StringIO(cli(demo_store, "metrics", *period,
                                               "--csv").stdout)))
    got = {(r["metric"], r["currency"]): r["value"] for r in rows}
    assert len(got) == len(rows)  # one row per figure and currency
    assert got[("paying_at_start", "")] == str(whole["paying_at_start"])
    assert got[("nps.score", "")] == str(whole["nps"]["score"])
    for r in whole["revenue"]:
        assert got[("revenue.mrr_end", r["currency"])] == str(r["mrr_end"])
    assert {r["start"] for r in rows} == {"2025-01-01T00:00:00+00:00"}
    for command in ("funnel", "time-in-stage"):
        table = list(csv.DictReader(io.StringIO(cli(demo_store, command, *period,
                                                    "--csv").stdout)))
        data = json.loads(cli(demo_store, command, *period, "--json").stdout)
        assert [r["stage"] for r in table] == [s["stage"] for s in data["stages"]]


def test_global_options_after_the_subcommand(demo_store: str) -> None:
    before = subprocess.run([*CLI, "--store", demo_store, "stage", "--json"],
                            capture_output=True, text=True, check=True).stdout
    for args in (["stage", "--store", demo_store, "--json"],
                 ["stage", f"--store={demo_store}", "--json"],
                 ["stage", "--json", "--store", demo_store, "--log-level", "error"]):
        proc = subprocess.run([*CLI, *args], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout == before, proc.stderr


def test_older_than_takes_weeks(demo_store: str) -> None:
    weeks = cli(demo_store, "handovers", "--older-than", "1w", "--json").stdout
    assert weeks == cli(demo_store, "handovers", "--older-than", "7d", "--json").stdout
    bad = cli(demo_store, "handovers", "--older-than", "1y", check=False)
    assert bad.returncode == 2 and "m, h, d or w" in bad.stderr


def test_audit_events_to_is_exclusive_until_stays_inclusive(demo_store: str) -> None:
    first = json.loads(cli(demo_store, "audit", "events", "--order", "oldest", "--limit", "1",
                           "--json").stdout)[0]
    at = first["occurred_at"]
    same = ("audit", "events", "--order", "oldest", "--json", "--from", at)
    to = json.loads(cli(demo_store, *same, "--to", at).stdout)
    until = json.loads(cli(demo_store, "audit", "events", "--order", "oldest", "--json",
                           "--since", at, "--until", at).stdout)
    assert to == [] and first["position"] in [e["position"] for e in until]
    both = cli(demo_store, *same, "--to", at, "--until", at, check=False)
    assert both.returncode == 2 and "not both" in both.stderr


def _cells(out: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()
            if line.startswith("│")]


def test_pending_handovers_at_80_columns_say_how_late_and_name_the_customer(
        demo_store: str) -> None:
    proc = cli(demo_store, "handovers", "--pending", env=_env())
    header = next(line for line in proc.stdout.splitlines() if line.startswith("┃"))
    assert {"customer", "name", "sent_at", "waited"} <= {c.strip() for c in header.split("┃")}
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    rows = [r for r in _cells(proc.stdout) if r[0]]
    assert rows and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r[-2]) for r in rows)
    name = json.loads(cli(demo_store, "stage", "--customer", rows[0][0], "--json").stdout)
    assert name[0]["name"].startswith(rows[0][1].rstrip("…"))  # the name, cut to fit


def test_empty_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    cli(url, "init")
    for command in (("handovers", "--pending"), ("gaps",), ("health",)):
        proc = cli(url, *command, env=_env())
        assert "Traceback" not in proc.stderr and "more:" not in proc.stderr, command


def test_gaps_at_80_columns_keep_detail_and_one_line_times(demo_store: str) -> None:
    proc = cli(demo_store, "gaps", "--as-of", "2026-01-01", env=_env())
    header = next(line for line in proc.stdout.splitlines() if line.startswith("┃"))
    assert {"customer", "name", "kind", "since", "detail"} <= {
        c.strip() for c in header.split("┃")}
    since = [r[3] for r in _cells(proc.stdout) if r[0]]
    assert since and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", s) for s in since)


def test_a_table_shows_the_first_rows_and_says_how_many_more(demo_store: str) -> None:
    every = json.loads(cli(demo_store, "gaps", "--as-of", "2026-01-01", "--json").stdout)
    assert len(every) > 5
    proc = cli(demo_store, "gaps", "--as-of", "2026-01-01", "--limit", "5", env=_env())
    assert len([r for r in _cells(proc.stdout) if r[0]]) == 5
    assert f"and {len(every) - 5:,} more: --limit N, --all, --csv, --json" in proc.stderr
    proc = cli(demo_store, "gaps", "--as-of", "2026-01-01", "--all",
               env=_env(COLUMNS="300"))
    assert len([r for r in _cells(proc.stdout) if r[0]]) == len(every)
    assert "more:" not in proc.stderr
    rows = list(csv.reader(io.StringIO(cli(demo_store, "gaps", "--as-of", "2026-01-01",
                                           "--limit", "5", "--csv").stdout)))
    assert len(rows) == len(every) + 1  # CSV and JSON give every row


@pytest.mark.parametrize("words, offered", [
    ("lifecycle-es gaps --kind ", {"unowned", "handover_stale", "stalled"}),
    ("lifecycle-es gaps --kind st", {"stalled"}),
    ("lifecycle-es gaps --team ", {"sales", "success", "marketing", "support"}),
    ("lifecycle-es --stage-model ", {"classic", "customer-success"}),
    ("lifecycle-es record stage_changed --to-stage ", {"onboarding", "retention"}),
    ("lifecycle-es record ", set(COMMANDS)),
    ("lifecycle-es audit events --type handover_", {"handover_sent", "handover_accepted"}),
])
def test_completion_offers_values(words: str, offered: set[str]) -> None:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    script = str(Path(sys.executable).parent / "lifecycle-es")  # completion is by its name
    proc = subprocess.run([script], capture_output=True, text=True, env={
                              **os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword),
                              "_LIFECYCLE_ES_COMPLETE": "complete_bash"})
    got = set(proc.stdout.split())
    assert offered <= got, proc.stderr
    prefix = words.split()[-1] if not words.endswith(" ") else ""
    assert all(g.startswith(prefix) for g in got)


def test_duration_for_people() -> None:
    assert [duration(s) for s in (59, 45 * 60, 5 * 3600 + 180, 3 * 86400 + 4 * 3600)] == [
        "0m", "45m", "5h 03m", "3d 04h"]


# ------------------------------------------------------------------ cannot be undone


def test_the_documented_anchor_recipe_runs(demo_store: str) -> None:
    text = (DOCS / "audit.md").read_text()
    recipe = next(b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)
                  if "--print-heads" in b)
    assert 'H=$(lifecycle-es audit verify --print-heads)' in recipe
    bin_dir = str(Path(sys.executable).parent)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe], capture_output=True,
                          text=True, env={**os.environ, "LIFECYCLE_ES_STORE": demo_store,
                                          "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(": clean")
    heads = cli(demo_store, "audit", "verify", "--print-heads")
    assert re.fullmatch(r"\d+:[0-9a-f]{64}(,settings=\d+:[0-9a-f]{64})?\n", heads.stdout)
    assert "clean" in heads.stderr


def _erase_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    engine = LifecycleEngine(url)
    engine.import_lines([json.dumps(REGISTER)])
    engine.close()
    return url


def _erased(url: str) -> bool:
    engine = LifecycleEngine(url)
    try:
        return engine.customer("acme").state.erased_at is not None
    finally:
        engine.close()


def _on_a_terminal(url: str, answer: str) -> tuple[int, str]:
    """``erase acme`` with a terminal as stdin, answering ``answer``: (exit, stderr)."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([*CLI, "--store", url, "erase", "acme", "--reason", "req-1"],
                                stdin=secondary, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.write(primary, answer.encode() + b"\n")
        _, err = proc.communicate(timeout=120)
    finally:
        os.close(primary)
        os.close(secondary)
    return proc.returncode, err


def test_erase_asks_on_a_terminal_and_no_erases_nothing(tmp_path: Path) -> None:
    url = _erase_store(tmp_path)
    code, err = _on_a_terminal(url, "n")
    assert code == 1 and "nothing erased" in err and "erase customer 'acme'" in err
    assert not _erased(url)
    code, err = _on_a_terminal(url, "y")
    assert code == 0, err
    assert _erased(url)


def test_erase_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    url = _erase_store(tmp_path)
    proc = cli(url, "erase", "acme", "--reason", "req-1", check=False, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "--yes" in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not _erased(url)
    dry = cli(url, "erase", "acme", "--reason", "req-1", "--dry-run", stdin=subprocess.DEVNULL)
    assert "erase customer 'acme'" in dry.stdout and not _erased(url)
    plan = json.loads(cli(url, "erase", "acme", "--reason", "r", "--dry-run", "--json").stdout)
    assert plan["erased"] is False and plan["dry_run"] is True and not _erased(url)
    cli(url, "erase", "acme", "--reason", "req-1", "--yes", stdin=subprocess.DEVNULL)
    assert _erased(url)
