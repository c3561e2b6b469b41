"""The metrics commands end to end (subprocess) on SQLite and PostgreSQL: stable JSON with
the hand-computed numbers of tests/test_metrics.py, CSV cohorts, one-line errors."""

from __future__ import annotations

import csv
import io
import json

import metrics_history
import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine

pytestmark = pytest.mark.slow


@pytest.fixture
def store(durable_store_url: str) -> str:
    engine = LifecycleEngine(durable_store_url)
    metrics_history.build(engine)
    engine.close()
    return durable_store_url


def test_metrics_commands(store: str) -> None:
    s = json.loads(cli(store, "metrics", "--from", "2024-01-01", "--to", "2024-04-01",
                       "--json").stdout)
    assert (s["paying_at_start"], s["paying_at_end"], s["new"], s["churned"]) == (6, 7, 2, 2)
    assert s["retention_rate"] == 5 / 6 and s["nps"]["score"] == 25.0
    assert [r["currency"] for r in s["revenue"]] == ["EUR", "USD"]
    human = cli(store, "metrics", "--from", "2024-01-01", "--to", "2024-04-01").stdout
    assert "83.33%" in human  # retention 5/6, rounded for people

    f = json.loads(cli(store, "funnel", "--ever", "--json").stdout)
    assert [st["skipped"] for st in f["stages"]] == [2, 7, 0, 0, 0, 0]

    rows = list(csv.DictReader(io.StringIO(
        cli(store, "cohorts", "--as-of", "2024-04-01", "--csv").stdout)))
    nov = next(r for r in rows if r["cohort"] == "2023-11")
    assert (nov["size"], nov["m3"]) == ("2", "0.5")
    pay = json.loads(cli(store, "cohorts", "--activity", "payments", "--as-of", "2024-04-01",
                         "--json").stdout)
    assert pay["activity"] == "payments" and pay["last_month"] == "2024-03"

    t = json.loads(cli(store, "time-in-stage", "--ever", "--as-of", "2024-04-01",
                      "--json").stdout)
    assert {st["stage"]: st["median_days"] for st in t["stages"]}["awareness"] == 30.5
    h = json.loads(cli(store, "time-in-stage", "--customer", "c11", "--as-of", "2024-04-01",
                       "--json").stdout)
    assert {r["stage"]: r["entries"] for r in h}["advocacy"] == 2


def test_bad_dates_are_one_line_errors(store: str) -> None:
    p = cli(store, "metrics", "--from", "2024-13-01", "--to", "2024-04-01", check=False)
    assert p.returncode == 2
    assert p.stderr.strip() == ("error: invalid input: from='2024-13-01': expected a date "
                                "YYYY-MM-DD or an ISO 8601 time")
    p = cli(store, "cohorts", "--activity", "visits", check=False)
    assert p.returncode == 2 and "activity='visits'" in p.stderr
