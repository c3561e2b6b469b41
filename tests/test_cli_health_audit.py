"""Issue 19, the rest: ``health --csv`` has the fields of ``health --json`` (its factors
flattened), and ``audit customer --state`` shows money in the one money format in text
(JSON and CSV keep integer minor units), at 80 and 200 columns."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest
from cli_helpers import cli, small_demo

from lifecycle_es.cli.lifecycle_checks import flat
from lifecycle_es.display import money_text

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return small_demo(tmp_path_factory, "rest")


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("one", [False, True])
def test_health_csv_has_the_fields_of_health_json(demo_store: str, one: bool) -> None:
    scores = json.loads(cli(demo_store, "health", "--as-of", "2026-01-01", "--json").stdout)
    args = ("--customer", scores[0]["customer"]) if one else ()
    scores = json.loads(cli(demo_store, "health", *args, "--as-of", "2026-01-01",
                            "--json").stdout)
    rows = _csv(cli(demo_store, "health", *args, "--as-of", "2026-01-01", "--csv").stdout)
    assert len(rows) == len(scores) and (len(rows) == 1) == one
    # a factor off for some customers (still_buying on a contract) is a column all the same
    expected = {"customer", "score", "band", "stage", "owner"} | {
        f"{name}.{part}" for score in scores for name in score["factors"]
        for part in ("value", "points", "weight", "contribution")}
    assert set(rows[0]) == expected
    for row, score in zip(rows, scores, strict=True):
        want = flat(score)
        assert set(want) <= expected
        assert row == {k: "" if want.get(k) is None else str(want[k]) for k in expected}


def test_health_json_and_csv_together_are_refused(demo_store: str) -> None:
    proc = cli(demo_store, "health", "--json", "--csv", check=False)
    assert proc.returncode == 2 and proc.stdout == "" and "--csv" in proc.stderr


@pytest.mark.parametrize("columns", [80, 200])
def test_audit_state_shows_money_as_people_read_it(demo_store: str, columns: int) -> None:
    scores = json.loads(cli(demo_store, "health", "--as-of", "2026-01-01", "--json").stdout)
    # health covers paying customers (and those buying without a contract: still_buying)
    customer = next(s["customer"] for s in scores if "still_buying" not in s["factors"])
    [state] = json.loads(cli(demo_store, "audit", "customer", customer, "--state",
                             "--json").stdout)
    assert isinstance(state["mrr"], int) and state["mrr"] > 0  # JSON: integer minor units
    [row] = _csv(cli(demo_store, "audit", "customer", customer, "--state", "--csv").stdout)
    assert row["mrr"] == str(state["mrr"])
    text = cli(demo_store, "audit", "customer", customer, "--state",
               env={**os.environ, "COLUMNS": str(columns)}).stdout
    assert max(len(line) for line in text.splitlines()) <= columns
    shown = money_text(state["mrr"], state["currency"])
    assert re.fullmatch(r"[A-Z]{3} \d{1,3}(,\d{3})*\.\d{2}", shown)
    mrr_line = next(line for line in text.splitlines() if " mrr " in line)
    assert shown in mrr_line and str(state["mrr"]) not in mrr_line.replace(shown, "")
