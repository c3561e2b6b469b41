"""Issue 19: the CLI's conventions, output that fits, and completed queries."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest
from cli_helpers import cli, small_demo

from lifecycle_es.cli.output import fitting, plural
from lifecycle_es.display import money_text as money

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return small_demo(tmp_path_factory, "conv")


def _env(columns: int) -> dict[str, str]:
    return {**os.environ, "COLUMNS": str(columns)}


def test_version_short_help_and_module(demo_store: str) -> None:
    assert cli(demo_store, "--version").stdout.startswith("lifecycle-es ")
    assert cli(demo_store, "-V").stdout == cli(demo_store, "--version").stdout
    out = cli(demo_store, "-h", env=_env(100)).stdout
    assert "--install-completion" in out and "<str>" not in out and "<bool>" not in out
    assert "URL" in out


def test_help_shows_words_not_type_names(demo_store: str) -> None:
    out = cli(demo_store, "audit", "events", "-h", env=_env(120)).stdout
    assert "DATE" in out and " N " in out
    assert "<" not in out
    for args in (("audit", "customer"), ("erase",), ("import",)):  # arguments too
        assert "<" not in cli(demo_store, *args, "-h", env=_env(120)).stdout, args


@pytest.mark.parametrize("args", [("--log-level", "LOUD", "stage"),
                                  ("gaps", "--json", "--csv"),
                                  ("handovers", "--as-of", "yesterday")])
def test_bad_options_one_line_exit_2(demo_store: str, args: tuple[str, ...]) -> None:
    proc = cli(demo_store, *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("columns", [80, 200])
def test_tables_fit_and_keep_ids_whole(demo_store: str, columns: int) -> None:
    proc = cli(demo_store, "health", env=_env(columns))
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    ids = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    assert ids and len(set(ids)) == len(ids) and all(i.startswith("cus-") for i in ids)
    if columns == 80:
        assert "left out to fit 80 characters" in proc.stderr


def test_csv_and_json_have_the_same_columns(demo_store: str) -> None:
    for command in (("gaps",), ("handovers",), ("stage",),
                    ("projections", "status")):
        rows = json.loads(cli(demo_store, *command, "--json").stdout)
        table = list(csv.reader(io.StringIO(cli(demo_store, *command, "--csv").stdout)))
        if rows:
            assert sorted(table[0]) == sorted(rows[0]), command
        assert len(table) == len(rows) + 1, command


def test_single_customer_is_field_value_lines(demo_store: str) -> None:
    customer = json.loads(cli(demo_store, "health", "--json").stdout)[0]["customer"]
    out = cli(demo_store, "stage", "--customer", customer).stdout
    fields = dict(line.split(None, 1) for line in out.splitlines()[1:] if " " in line)
    assert fields["customer"].strip() == customer
    assert fields["mrr"].split()[0] in {"EUR", "USD", "GBP"} or fields["mrr"].strip() == ""


def test_handovers_as_of_undoes_later_decisions(demo_store: str) -> None:
    rows = json.loads(cli(demo_store, "handovers", "--json").stdout)
    decided = [r for r in rows if r["decided_at"] is not None]
    assert decided
    first = decided[0]
    at = first["sent_at"]
    then = json.loads(cli(demo_store, "handovers", "--as-of", at, "--pending",
                          "--json").stdout)
    ids = {r["handover_id"] for r in then}
    assert first["handover_id"] in ids
    assert all(r["status"] == "pending" and r["sent_at"] <= at for r in then)


def test_verify_verdict_on_stdout(demo_store: str) -> None:
    proc = cli(demo_store, "audit", "verify")
    assert "clean" in proc.stdout
    assert json.loads(cli(demo_store, "audit", "verify", "--json").stdout)["clean"] is True


def test_money_and_plurals() -> None:
    assert money(9782720, "EUR") == "EUR 97,827.20"
    assert money(1200, "JPY") == "JPY 1,200"
    assert plural(1, "new customer") == "1 new customer"
    assert plural(2, "new customer") == "2 new customers"


def test_fitting_keeps_key_columns_and_drops_trailing_ones() -> None:
    rows = [{"customer": "cus-000000000001", "a": "x" * 30, "b": "y" * 30}]
    assert fitting(rows, ("customer", "a", "b"), 40) == ["customer", "a"]
    assert fitting(rows, ("customer", "a", "b"), 200) == ["customer", "a", "b"]


def test_bom_is_named(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'bom.db'}"
    data = tmp_path / "bom.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + b'{"type": "register"}\n')
    proc = cli(store, "import", str(data), check=False)
    assert proc.returncode == 2 and "BOM" in proc.stderr
