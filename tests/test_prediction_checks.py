"""The prediction where teams see it: the health factor still_buying and the gap lapsing,
for customers buying without a contract and never for those on one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from gap_helpers import CFG
from prediction_helpers import START, WHO, at, pay, register, shop

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config, GapsConfig
from lifecycle_es.errors import ConfigError
from lifecycle_es.reading.lifecycle_checks.gaps import check_kind

AS_OF = START + timedelta(days=200)


def big_buyer(engine: LifecycleEngine, customer: str, *, contract: bool = False) -> None:
    """Ten purchases of 500.00, one every 5 days from day 0, then none."""
    register(engine, customer)
    if contract:
        engine.purchase(customer=customer, plan="pro", mrr=50_000, currency="EUR",
                        contract_start=str(START), contract_end=str(START.replace(year=2027)),
                        at=at(0, 9), **WHO)
    for d in range(0, 50, 5):
        pay(engine, customer, d, 50_000)


@pytest.fixture
def store(engine: LifecycleEngine) -> LifecycleEngine:
    shop(engine)
    big_buyer(engine, "vip")  # went quiet after day 45: lapsing, nobody in touch
    big_buyer(engine, "vip2")  # the same, but its owner checked in on day 199
    engine.check_in(customer="vip2", at=at(199), actor="sue", team="success")
    big_buyer(engine, "subscriber", contract=True)  # the same payments, under a contract
    return engine


def test_lapsing_finds_the_quiet_valuable_buyer_only(store: LifecycleEngine) -> None:
    gaps = store.gaps(AS_OF, kind="lapsing", config=CFG)
    mine = {g.customer: g for g in gaps}
    assert "vip" in mine and "vip2" not in mine and "subscriber" not in mine
    vip = mine["vip"]
    prediction = store.predict(AS_OF)
    figures = prediction.of("vip")
    assert figures is not None and figures.p_alive < 0.5 and not figures.on_contract
    assert figures.frequency == 9 and figures.recency == 45
    assert str(START + timedelta(days=45)) < vip.since.date().isoformat() < str(AS_OF)
    assert "probability alive" in vip.detail and "no check-in since" in vip.detail
    assert vip.id.startswith("lapsing:vip:")
    # p_alive at the gap's since, by the model of AS_OF, is the threshold
    m = prediction.model
    t = (vip.since - at_day(0)).total_seconds() / 86_400 - 1
    odds = m.a / (m.b + 8) * ((m.alpha + t) / (m.alpha + 45)) ** (m.r + 9)
    assert 1 / (1 + odds) == pytest.approx(0.5, abs=1e-6)
    # all gaps include it, a team filter keeps it, a stricter threshold drops it
    assert any(g.kind == "lapsing" and g.customer == "vip" for g in store.gaps(AS_OF,
                                                                               config=CFG))
    strict = Config(gaps=GapsConfig(lapsing_p_alive=figures.p_alive / 2))
    assert not [g for g in store.gaps(AS_OF, kind="lapsing", config=strict)
                if g.customer == "vip"]


def at_day(n: int) -> object:
    from datetime import UTC, datetime, time

    return datetime.combine(START + timedelta(days=n), time(), UTC)


def test_still_buying_scores_buyers_and_is_off_on_a_contract(store: LifecycleEngine) -> None:
    scores = {h.customer: h for h in store.health(as_of=AS_OF, config=CFG)}
    vip, sub = scores["vip"], scores["subscriber"]
    factors = {f.name: f for f in vip.factors}
    p_alive = store.predict(AS_OF).of("vip").p_alive  # type: ignore[union-attr]
    assert factors["still_buying"].value == pytest.approx(p_alive, abs=5e-4)
    assert factors["still_buying"].points == 0  # below 0.2
    assert sum(f.weight for f in vip.factors) == 120
    assert "still_buying" not in {f.name for f in sub.factors}
    assert sum(f.weight for f in sub.factors) == 100  # the others weigh as before
    for h in (vip, sub):
        assert sum(f.contribution for f in h.factors) == pytest.approx(h.score, abs=0.05)
    # the buyers without a contract are scored; with the factor's weight 0 they are not
    off = Config.model_validate({"health": {"factors": {"still_buying": {"weight": 0}}}})
    assert "vip" not in {h.customer for h in store.health(as_of=AS_OF, config=off)}
    assert store.health("subscriber", AS_OF, config=off)[0].score == sub.score


@pytest.mark.parametrize(("key", "value"), [
    ("lapsing_p_alive", 0), ("lapsing_p_alive", 1), ("lapsing_p_alive", "half"),
    ("lapsing_top_share", 0), ("lapsing_top_share", 1.5),
    ("lapsing_horizon_days", 0), ("lapsing_horizon_days", 10**20),
])
def test_bad_lapsing_thresholds_name_the_key(tmp_path: object, key: str,
                                             value: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "c.toml"
    path.write_text(f"[gaps]\n{key} = {value!r}\n".replace("'", '"'))
    with pytest.raises(ConfigError, match=f"gaps.{key}="):
        Config.from_toml(path)


def test_lapsing_is_a_kind() -> None:
    assert check_kind("Lapsing") == "lapsing"


def test_the_console_and_the_report_say_what_p_alive_means(durable_store_url: str) -> None:
    from web_helpers import add_users, client, sign_in

    from lifecycle_es.report import build_report

    with LifecycleEngine(durable_store_url) as engine:
        add_users(engine)
        shop(engine)
        big_buyer(engine, "vip")
        big_buyer(engine, "subscriber", contract=True)
        with client(engine) as c:
            sign_in(c, "ann")
            page = c.get("/customers/vip").text
            p_alive = engine.predict().of("vip").p_alive  # type: ignore[union-attr]
            assert f'data-p-alive="{p_alive:.3f}"' in page
            assert "has not stopped buying for good" in page and "Expected in the next" in page
            assert "Still buying:" not in c.get("/customers/subscriber").text
        html = build_report(engine, at_day(0), at_day(200), at_day(200))  # type: ignore[arg-type]
        assert "Still buying" in html and "has not stopped buying for good" in html
        assert 'data-factor="still_buying"' in html


def test_on_the_demo_store_only_buyers_without_a_contract_get_them() -> None:
    from datetime import UTC, date, datetime

    from lifecycle_es.demo import generate, parse_all
    from lifecycle_es.domain.stage_model import CLASSIC

    until = date(2026, 11, 1)
    engine = LifecycleEngine("memory://")
    engine.record_many(parse_all(generate(200, 1, CLASSIC, until)))
    as_of = datetime(2026, 11, 1, tzinfo=UTC)
    facts = engine.customer_facts(as_of)
    contract = {c for c, f in facts.items() if f.paying}
    lapsing = [g for g in engine.gaps(as_of, config=CFG) if g.kind == "lapsing"]
    assert lapsing and not {g.customer for g in lapsing} & contract
    scores = engine.health(as_of=as_of, config=CFG)
    buying = {h.customer for h in scores if "still_buying" in {f.name for f in h.factors}}
    assert buying and not buying & contract
    assert contract <= {h.customer for h in scores}  # every paying customer still scored
    shoppers = {f"cus-{i:06d}" for i in range(200 - 200 // 6 + 1, 201)}
    assert {g.customer for g in lapsing} <= shoppers and buying <= shoppers
