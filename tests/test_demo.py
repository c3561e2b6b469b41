"""The demo history: deterministic, valid on every store and preset, rich enough for the gaps."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.cli.demo import run_demo
from lifecycle_es.commands import COMMANDS
from lifecycle_es.demo import generate, parse_all, write_jsonl
from lifecycle_es.domain.stage_model import CHURNED, CLASSIC, CUSTOMER_SUCCESS, StageModel
from lifecycle_es.errors import InvalidInput, LifecycleError

UNTIL = date(2026, 11, 1)
PRESETS = [CLASSIC, CUSTOMER_SUCCESS]
GAP_KINDS = {"unowned", "handover_stale", "renewal_at_risk", "detractor_ignored", "stalled",
             "promoter_not_asked", "unknown_or_expired_offer"}


def gap_kinds(commands: list[dict[str, Any]], model: StageModel, until: date) -> Counter[str]:
    """Count the gaps of issue 5 as of ``until``, straight from the commands (voids excluded)."""
    end = datetime(until.year, until.month, until.day, tzinfo=UTC)
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    campaigns: dict[str, dict[str, Any]] = {}
    for cmd in commands:
        if "campaign" in cmd:
            c = campaigns.setdefault(cmd["campaign"], {"amends": [], "ended": None})
            if cmd["type"] == "campaign_announced":
                c.update(starts=date.fromisoformat(cmd["starts"]),
                         ends=date.fromisoformat(cmd["ends"]))
            elif cmd["type"] == "campaign_amended" and "ends" in cmd:
                c["amends"].append((datetime.fromisoformat(cmd["at"]),
                                    date.fromisoformat(cmd["ends"])))
            elif cmd["type"] == "campaign_ended":
                c["ended"] = datetime.fromisoformat(cmd["at"]).date()
        else:
            by_customer[cmd["customer"]].append(cmd)

    def running(cid: str | None, at: datetime) -> bool:
        c = campaigns.get(cid or "")
        if c is None or "starts" not in c:
            return False
        ends = c["ends"]
        for amended_at, new_ends in c["amends"]:
            if amended_at <= at:
                ends = new_ends
        return bool(c["starts"] <= at.date() <= ends
                    and (c["ended"] is None or at.date() <= c["ended"]))

    found: Counter[str] = Counter()
    for cmds in by_customer.values():
        voided = {c["voided_version"] for c in cmds if c["type"] == "event_voided"}
        live = [(datetime.fromisoformat(c["at"]), c) for v, c in enumerate(cmds, 1)
                if v not in voided]
        stage, since, owner, paying = "", end, None, False
        contract_end: date | None = None
        handovers: dict[str, datetime] = {}
        checkins = [at for at, c in live if c["type"] == "check_in"]
        asks = [at for at, c in live if c["type"] == "advocacy_requested"]
        for at, c in live:
            t = c["type"]
            if t in ("customer_registered", "stage_changed", "churned", "won_back"):
                stage = {"customer_registered": c.get("stage"), "stage_changed":
                         c.get("to_stage"), "churned": CHURNED}.get(t) or model.reentry_stage
                since = at
            if t in ("purchase", "won_back", "churned"):
                paying = t != "churned"
            if t in ("purchase", "renewal"):
                contract_end = date.fromisoformat(c.get("contract_end") or c["new_contract_end"])
            if t in ("owner_assigned", "handover_accepted", "owner_released"):
                owner = {"owner_assigned": c.get("owner"), "handover_accepted": c["actor"]}.get(t)
            if t == "handover_sent":
                handovers[c["handover_id"]] = at
            if t in ("handover_accepted", "handover_rejected"):
                handovers.pop(c["handover_id"], None)
            if t == "touchpoint" and c.get("campaign_id") and not running(c["campaign_id"], at):
                found["unknown_or_expired_offer"] += 1
            if t == "nps_answer" and c["score"] <= 6 and at <= end - timedelta(days=7):
                found["detractor_ignored"] += not any(at < x <= at + timedelta(days=7)
                                                      for x in checkins)
            if t == "nps_answer" and c["score"] >= 9 and at <= end - timedelta(days=30):
                found["promoter_not_asked"] += not any(at < x <= at + timedelta(days=30)
                                                       for x in asks)
        found["unowned"] += owner is None and stage != CHURNED
        found["handover_stale"] += sum(end - at > timedelta(days=2) for at in handovers.values())
        limit = model.stage(stage).stall_after_days
        found["stalled"] += limit is not None and end - since > timedelta(days=limit)
        found["renewal_at_risk"] += bool(
            paying and contract_end and until <= contract_end <= until + timedelta(days=30)
            and not any(x > end - timedelta(days=30) for x in checkins))
    return found


@pytest.mark.parametrize("model", PRESETS, ids=lambda m: m.name)
def test_same_arguments_same_history(model: StageModel) -> None:
    first = generate(60, 11, model, UNTIL)
    assert first == generate(60, 11, model, UNTIL)
    assert first != generate(60, 12, model, UNTIL)
    assert generate(60, 11, model, date(2025, 6, 1)) != first


@pytest.mark.parametrize("model", PRESETS, ids=lambda m: m.name)
def test_history_spans_three_years_in_time_order_before_until(model: StageModel) -> None:
    commands = generate(150, 3, model, UNTIL)
    times = [datetime.fromisoformat(c["at"]) for c in commands]
    assert times == sorted(times)
    assert times[-1] < datetime(2026, 11, 1, tzinfo=UTC)
    assert times[0] < datetime(2024, 1, 1, tzinfo=UTC)  # three years back, give or take
    assert times[-1] > datetime(2026, 10, 1, tzinfo=UTC)
    assert 15 <= len(commands) / 150 <= 35
    assert {c["customer"] for c in commands if "customer" in c} == {
        f"cus-{i:06d}" for i in range(1, 151)}


@pytest.mark.parametrize("model", PRESETS, ids=lambda m: m.name)
def test_every_command_type_appears(model: StageModel) -> None:
    commands = generate(150, 5, model, UNTIL)
    assert set(COMMANDS) <= {c["type"] for c in commands}
    referrals = [c for c in commands if c["type"] == "advocacy_given"
                 and c["kind"] == "referral"]
    ids = {c["customer"] for c in commands if c["type"] == "customer_registered"}
    assert referrals and all(r["referred_customer"] in ids - {r["customer"]} for r in referrals)
    regressions = [c for c in commands if c["type"] == "stage_changed"
                   and model.is_regression(_stage_before(commands, c, model), c["to_stage"])]
    assert regressions
    scores = Counter("promoter" if c["score"] >= 9 else "passive" if c["score"] >= 7
                     else "detractor" for c in commands if c["type"] == "nps_answer")
    assert min(scores.values()) > 0 and len(scores) == 3


def _stage_before(commands: list[dict[str, Any]], change: dict[str, Any],
                  model: StageModel) -> str:
    stage = ""
    for c in commands:
        if c is change:
            return stage
        if c.get("customer") != change["customer"]:
            continue
        if c["type"] == "customer_registered":
            stage = c["stage"]
        elif c["type"] == "stage_changed":
            stage = c["to_stage"]
        elif c["type"] == "churned":
            stage = CHURNED
        elif c["type"] == "won_back":
            stage = model.reentry_stage
    raise AssertionError("change not found")


@pytest.mark.parametrize("model", PRESETS, ids=lambda m: m.name)
@pytest.mark.parametrize("seed", [1, 2])
def test_history_has_every_gap_kind_at_until(model: StageModel, seed: int) -> None:
    found = gap_kinds(generate(200, seed, model, UNTIL), model, UNTIL)
    assert {k for k, n in found.items() if n > 0} == GAP_KINDS


@pytest.mark.parametrize("model", PRESETS, ids=lambda m: m.name)
def test_several_seeds_import_cleanly_in_memory(model: StageModel) -> None:
    for seed in (21, 22, 23):
        commands = generate(80, seed, model, UNTIL)
        engine = LifecycleEngine("memory://", stage_model=model)
        result = engine.record_many(parse_all(commands))
        assert result.events == len(commands)


@pytest.mark.parametrize("model", PRESETS, ids=lambda m: m.name)
def test_history_imports_cleanly_on_durable_stores(
    model: StageModel, durable_store_url: str
) -> None:
    commands = generate(120, 4, model, UNTIL)
    engine = LifecycleEngine(durable_store_url, stage_model=model)
    try:
        result = engine.record_many(parse_all(commands))
        assert result.events == len(commands)
        assert result.customers_created == 120
        for ext in ("cus-000001", "cus-000060", "cus-000120"):
            mine = [c for c in commands if c.get("customer") == ext]
            assert engine.customer(ext).version == len(mine)
    finally:
        engine.close()


def test_run_demo_refuses_a_store_with_events(
    store_url_factory: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    engine = LifecycleEngine(store_url_factory("sqlite"), stage_model=CUSTOMER_SUCCESS)
    try:
        result = run_demo(engine, customers=30, seed=3, until=UNTIL)
        out = capsys.readouterr().out
        assert f"{result.events} events" in out and "customer-success" in out
        assert "adoption" in out  # the stage counts of the model
        with pytest.raises(LifecycleError, match="already has customers; use a new --store"):
            run_demo(engine, customers=30, seed=3, until=UNTIL)
        assert engine.writer.recorder.max_notification_id() == result.events
    finally:
        engine.close()


def test_run_demo_on_a_store_with_only_users(
    store_url_factory: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The console's users may be added first: they are no customers; a campaign is."""
    engine = LifecycleEngine(store_url_factory("sqlite"))
    meta = {"at": "2024-01-01T00:00:00Z", "actor": "root", "team": "admin"}
    try:
        for n in range(3):
            engine.add_user(user=f"u{n}", user_team="success", role="member",
                            password_hash="$argon2id$" + "x" * 60, **meta)
        result = run_demo(engine, customers=20, seed=3, until=UNTIL)
        assert engine.writer.recorder.max_notification_id() == 3 + result.events
        capsys.readouterr()
    finally:
        engine.close()
    engine = LifecycleEngine(store_url_factory("sqlite"))
    try:
        engine.announce_campaign(campaign="c", name="C", offer="o", starts="2024-01-01",
                                 ends="2024-02-01", owning_team="marketing", **meta
                                 | {"team": "marketing"})
        with pytest.raises(LifecycleError, match="already has customers"):
            run_demo(engine, customers=20, seed=3, until=UNTIL)
        assert engine.writer.recorder.max_notification_id() == 1
    finally:
        engine.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lifecycle_es.cli.main", *args],
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_cli_demo_writes_prints_and_refuses_a_second_run(durable_store_url: str) -> None:
    first = _cli("--store", durable_store_url, "demo", "--customers", "40", "--seed", "9")
    assert first.returncode == 0, first.stderr
    assert "40 customers (seed 9, model classic" in first.stdout
    assert "payment" in first.stdout and "awareness" in first.stdout
    again = _cli("--store", durable_store_url, "demo", "--customers", "40")
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0
    assert "already has customers; use a new --store" in again.stderr
    assert "Traceback" not in again.stderr


def test_write_jsonl_writes_the_lines_generate_returns(tmp_path: Path) -> None:
    """Made part by part (bounded memory), merged: the same lines in the same order."""
    path = tmp_path / "history.jsonl"
    lines = write_jsonl(str(path), 120, 5, CLASSIC, UNTIL, pace=2.0, part=25)
    expected = [orjson.dumps(c) for c in generate(120, 5, CLASSIC, UNTIL, pace=2.0)]
    assert path.read_bytes().splitlines() == expected and lines == len(expected)


def test_pace_makes_longer_histories_of_the_same_customers() -> None:
    slow, busy = generate(60, 3, CLASSIC, UNTIL), generate(60, 3, CLASSIC, UNTIL, pace=4.0)
    assert len(busy) > 2 * len(slow)
    assert {c.get("customer") for c in busy} == {c.get("customer") for c in slow}
    LifecycleEngine("memory://").record_many(parse_all(busy))  # valid as ever


@pytest.mark.parametrize("pace", [0, -1, 0.09, 100.5, 10**30, float("nan"), float("inf")])
def test_a_pace_out_of_range_is_refused(pace: float) -> None:
    with pytest.raises(InvalidInput) as exc:
        generate(10, 1, CLASSIC, UNTIL, pace=pace)
    assert [p.field for p in exc.value.problems] == ["pace"]
    assert "from 0.1 to 100" in str(exc.value)
