"""The projections CLI in real subprocesses, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cli_helpers import cli, popen
from projection_gen import snapshot, write

from lifecycle_es import LifecycleEngine

pytestmark = pytest.mark.slow
BUILTIN = ["current_stage", "handover_history"]


def test_rebuild_status_and_queries(durable_store_url: str) -> None:
    eng = LifecycleEngine(durable_store_url)
    events = write(eng, customers=30)
    old = datetime.now(UTC) - timedelta(days=5)
    eng.register(customer="late", name="L", segment="smb", source="web", at=old,
                 actor="ann", team="sales")
    eng.send_handover(customer="late", handover_id="h9", from_team="sales",
                      to_team="support", at=old, actor="ann", team="sales")
    eng.close()

    out = json.loads(cli(durable_store_url, "projections", "rebuild", *BUILTIN,
                         "--batch-size", "100", "--json").stdout)
    assert out["events"] == events + 2 and out["projections"] == BUILTIN
    status = json.loads(cli(durable_store_url, "projections", "status", "--json").stdout)
    by_name = {s["name"]: s for s in status}
    assert by_name["current_stage"]["lag"] == 0
    assert by_name["current_stage"]["rows"] == 31
    assert by_name["current_stage"]["rebuilt_at"]
    assert by_name["current_stage"]["state"] == "up to date"

    counts = json.loads(cli(durable_store_url, "stage", "--json").stdout)
    assert sum(c["customers"] for c in counts) == 31
    row = json.loads(cli(durable_store_url, "stage", "--customer", "late", "--json").stdout)
    assert row[0]["stage"] == "awareness"
    late = json.loads(cli(durable_store_url, "handovers", "--customer", "late", "--pending",
                          "--older-than", "4d",
                          "--json").stdout)
    assert [(h["customer"], h["to_team"]) for h in late] == [("late", "support")]
    assert json.loads(cli(durable_store_url, "handovers", "--customer", "late", "--pending",
                                     "--older-than", "6d",
                          "--json").stdout) == []
    wide = {**os.environ, "COLUMNS": "250"}
    table = cli(durable_store_url, "handovers", "--customer", "late", env=wide).stdout
    assert "h9" in table and "support" in table


@pytest.mark.parametrize("args", [
    ("projections", "rebuild", "nope"), ("projections", "run", "--once", "nope"),
    ("handovers", "--older-than", "soon"), ("stage", "--customer", "ghost")])
def test_user_errors_are_one_line(durable_store_url: str, args: tuple[str, ...]) -> None:
    cli(durable_store_url, "init")  # reading commands refuse a store that does not exist
    proc = cli(durable_store_url, *args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    if args[-1] == "nope":
        assert "known: " in lines[0] and "current_stage" in lines[0]


def test_two_runners_at_once_equal_one(durable_store_url: str,
                                       store_url_factory: Callable[[str], str]) -> None:
    eng = LifecycleEngine(durable_store_url)
    write(eng, customers=300)
    runners = [popen(durable_store_url, "projections", "run", "--once", *BUILTIN,
                     "--batch-size", "150") for _ in range(2)]
    for r in runners:
        _, err = r.communicate(timeout=300)
        assert r.returncode == 0, err
    got = snapshot(eng.projections)
    kind = "sqlite" if durable_store_url.startswith("sqlite") else "postgres"
    one = LifecycleEngine(store_url_factory(kind))
    try:
        write(one, customers=300)
        cli(_url(one), "projections", "run", "--once", *BUILTIN)
        assert snapshot(one.projections) == got
        assert len(got["current_stage"]) == 300
    finally:
        eng.close()
        one.close()


def _url(engine: LifecycleEngine) -> str:
    s = engine.store
    if s.kind == "sqlite":
        return f"sqlite:///{s.path}"
    return f"postgresql://{s.user}@{s.host}:{s.port}/{s.dbname}?schema={s.schema}"


def test_run_follows_new_events_until_ctrl_c(durable_store_url: str) -> None:
    eng = LifecycleEngine(durable_store_url)
    eng.register(customer="a", name="A", segment="smb", source="web",
                 at="2024-01-01T00:00:00Z", actor="ann", team="sales")
    proc = popen(durable_store_url, "projections", "run", *BUILTIN, "--poll", "0.3")
    try:
        deadline = time.monotonic() + 60
        pm = eng.projections
        seen_first = False
        while time.monotonic() < deadline:
            rows = pm.fetch("current_stage") if pm.read.table_exists("current_stage") else []
            if not seen_first and len(rows) == 1:
                seen_first = True
                eng.register(customer="b", name="B", segment="smb", source="web",
                             at="2024-01-02T00:00:00Z", actor="ann", team="sales")
            if len(rows) == 2:
                break
            time.sleep(0.1)
        assert [r["customer"] for r in pm.fetch("current_stage", order="customer")] == ["a", "b"]
        assert proc.poll() is None, "runner exited while following"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        eng.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
