"""Health scores: each factor's points and contribution computed by hand, past dates, config."""

from __future__ import annotations

from pathlib import Path

import pytest
from gap_helpers import CFG, History, day

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config, load_config
from lifecycle_es.errors import ConfigError, UnknownCustomer
from lifecycle_es.reading.lifecycle_checks.health import Health


def story(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("hc")
    h.cmd("owner_assigned", "hc", 0, owner="sue")
    h.buy("hc", 1, "2025-12-31", mrr=1000)
    h.cmd("stage_changed", "hc", 2, to_stage="onboarding")  # stalls after 45 days
    h.cmd("nps_answer", "hc", 10, score=8)
    h.cmd("check_in", "hc", 20)
    h.cmd("expansion", "hc", 50, mrr_delta=500)
    h.cmd("advocacy_given", "hc", 60, kind="review")
    h.register("lead")  # not paying


def factors(h: Health) -> dict[str, tuple[float | None, float, float]]:
    return {f.name: (f.value, f.points, f.contribution) for f in h.factors}


def test_factor_contributions_by_hand(engine: LifecycleEngine) -> None:
    story(engine)
    [h] = engine.health(as_of=day(100), config=CFG)  # the lead is not paying: not scored
    assert (h.customer, h.stage, h.owner) == ("hc", "onboarding", "sue")
    assert factors(h) == {
        "last_nps": (8, 60, 15),  # 8 <= 8: 60 points x 25 / 100
        "days_since_check_in": (80, 30, 6),  # 60 < 80 <= 90: 30 points x 20 / 100
        "open_gaps": (1, 50, 10),  # stalled in onboarding since day 47
        "mrr_trend": (50, 100, 15),  # 1000 on day 10 -> 1500: +50%
        "stalled_days": (53, 0, 0),  # 98 days in onboarding - 45
        "advocacy_given": (1, 100, 10),
    }
    assert (h.score, h.band) == (56, "at risk")
    assert sum(f.contribution for f in h.factors) == h.score


def test_past_date(engine: LifecycleEngine) -> None:
    story(engine)
    [h] = engine.health(as_of=day(30), config=CFG)
    assert factors(h) == {
        "last_nps": (8, 60, 15),
        "days_since_check_in": (10, 100, 20),
        "open_gaps": (0, 100, 20),
        "mrr_trend": (None, 70, 10.5),  # not paying 90 days earlier: the 'missing' points
        "stalled_days": (0, 100, 10),
        "advocacy_given": (0, 50, 5),
    }
    assert (h.score, h.band) == (80.5, "healthy")


def test_one_customer_and_unknown(engine: LifecycleEngine) -> None:
    story(engine)
    [lead] = engine.health("lead", day(30), config=CFG)
    assert factors(lead)["last_nps"] == (None, 50, 12.5)
    assert factors(lead)["days_since_check_in"] == (None, 0, 0)
    with pytest.raises(UnknownCustomer):
        engine.health("nobody", day(30), config=CFG)
    with pytest.raises(UnknownCustomer):  # not registered yet at that time
        engine.health("hc", day(-1), config=CFG)


def test_configured_scorecard(engine: LifecycleEngine, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    story(engine)
    path = tmp_path / "lifecycle.toml"
    path.write_text("[health]\ntrend_days = 30\n[health.bands]\nhealthy = 90\nat_risk = 50\n"
                    "[health.factors.last_nps]\nweight = 75\n")
    monkeypatch.setenv("LIFECYCLE_ES_CONFIG", str(path))
    cfg = load_config()
    assert cfg.health.factors["last_nps"].steps == [(6, 0), (8, 60)]  # only the weight changed
    [h] = engine.health(as_of=day(30), config=cfg)
    # weights 75 + 20 + 20 + 15 + 10 + 10 = 150
    assert factors(h)["last_nps"] == (8, 60, 30)
    assert h.score == round((75 * 60 + 20 * 100 + 20 * 100 + 15 * 70 + 10 * 100 + 10 * 50)
                            / 150, 2)
    assert h.band == "at risk"
    everyone = Config.model_validate({"health": {"paying_only": False}})
    assert [x.customer for x in engine.health(as_of=day(30), config=everyone)] == ["lead", "hc"]


@pytest.mark.parametrize(("text", "message"), [
    ("[health.factors.last_nps]\nweight = -1\n", "health.factors.last_nps.weight=-1"),
    ("[health.factors.mood]\nweight = 1\n", "unknown factor"),
    ("[health.bands]\nhealthy = 30\nat_risk = 60\n", "must not exceed healthy"),
    ("[gaps]\nhandover_sla_days = 0\n", "gaps.handover_sla_days=0"),
    ("[gaps]\nsla = 2\n", "gaps.sla"),
    ("[health.factors.open_gaps]\nsteps = [[2, 10], [1, 50]]\n", "bounds must increase"),
    ("not toml", "config file"),
])
def test_config_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(path)
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "missing.toml")
