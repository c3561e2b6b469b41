"""What a dashboard asks: gaps and health filtered by team or owner, one page at a time, and
the ``gap_now`` row they read at "now" — on SQLite and PostgreSQL (and memory for input)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from gap_helpers import CFG, T0, History, day

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate, parse_all
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.errors import InvalidInput, UnknownCustomer
from lifecycle_es.reading.lifecycle_checks.facts import EVERYONE, FactsReader

UNTIL = date(2026, 11, 1)
END = datetime(UNTIL.year, UNTIL.month, UNTIL.day, tzinfo=UTC)
MID = END - timedelta(days=400)  # facts of most customers happened after: folded


@pytest.fixture
def demo(durable_store_url: str) -> Iterator[LifecycleEngine]:
    """A small demo history with every gap kind, plus hand-made twists at its end."""
    engine = LifecycleEngine(durable_store_url, stage_model=CLASSIC)
    engine.record_many(parse_all(generate(150, 3, CLASSIC, UNTIL)))
    h = History(engine)
    h.register("late", at=(END - T0).days - 30)
    at = END - timedelta(days=20)
    h.cmd("nps_answer", "late", at, score=9)
    h.cmd("nps_answer", "late", at, score=3)  # same time: the later version counts
    h.cmd("check_in", "late", at - timedelta(days=5))  # recorded after a later fact
    h.cmd("advocacy_requested", "late", at, kind="review")
    h.cmd("check_in", "late", at + timedelta(days=1))  # version 6
    h.cmd("event_voided", "late", at + timedelta(days=2), voided_version=6,
          reason="wrong customer")
    h.register("gone", at=(END - T0).days - 60)  # churned: the last stage's team (success)
    h.buy("gone", (END - T0).days - 59, "2027-01-01")
    h.cmd("churned", "gone", END - timedelta(days=50), reason="budget")
    h.cmd("nps_answer", "gone", END - timedelta(days=40), score=2)  # detractor ignored
    yield engine
    engine.close()


def test_now_row_is_the_fold_of_the_history(demo: LifecycleEngine) -> None:
    demo.projections.catch_up()
    reader = FactsReader(demo.projections.read)
    at = END + timedelta(days=1)
    now = reader._current(at, None, EVERYONE)
    folded = reader._folded(at, None, changed_after=datetime(1, 1, 1, tzinfo=UTC))
    assert len(now) == 152
    assert now == folded
    late = now["late"]
    assert (late.last_nps, late.advocacy_given) == (3, 0)
    assert late.last_check_in == END - timedelta(days=25)
    assert late.last_advocacy_ask == END - timedelta(days=20)


@pytest.mark.parametrize("at", [END, MID], ids=["now", "past"])
def test_filters_and_pages_are_those_of_the_whole_list(demo: LifecycleEngine,
                                                        at: datetime) -> None:
    every = demo.gaps(at, config=CFG)
    owners = {g.owner for g in every if g.owner}
    assert len(every) > 20 and len(owners) > 3
    if at == END:
        assert [g.team for g in every if g.customer == "gone"] == ["success"]
    for team in CLASSIC.teams:
        assert demo.gaps(at, team=team, config=CFG) == [g for g in every if g.team == team]
    for owner in [*sorted(owners)[:4], "nobody-at-all"]:
        mine = [g for g in every if g.owner == owner]
        assert demo.gaps(at, owner=owner, config=CFG) == mine
        assert demo.gaps(at, "handover_stale", owner=owner, config=CFG) == [
            g for g in mine if g.kind == "handover_stale"]
    assert demo.gaps(at, limit=7, offset=5, config=CFG) == every[5:12]
    pages = [demo.gaps(at, limit=10, offset=n, config=CFG) for n in range(0, len(every), 10)]
    assert [g for p in pages for g in p] == every  # early pages read only older gaps
    assert demo.gaps(at, offset=len(every) - 2, config=CFG) == every[-2:]
    sales = [g for g in every if g.team == "sales"]
    assert demo.gaps(at, team="sales", limit=3, offset=1, config=CFG) == sales[1:4]

    scores = demo.health(as_of=at, config=CFG)
    assert len(scores) > 20
    for team in CLASSIC.teams:
        assert demo.health(as_of=at, team=team, config=CFG) == [
            h for h in scores if _team(h.stage) == team]
    owner = sorted(h.owner for h in scores if h.owner)[0]
    assert demo.health(as_of=at, owner=owner, config=CFG) == [
        h for h in scores if h.owner == owner]
    assert demo.health(as_of=at, limit=5, offset=3, config=CFG) == scores[3:8]
    one = scores[0]
    other = next(t for t in CLASSIC.teams if t != _team(one.stage))
    assert demo.health(one.customer, at, team=_team(one.stage), config=CFG) == [one]
    assert demo.health(one.customer, at, team=other, config=CFG) == []


def _team(stage: str) -> str | None:
    return CLASSIC.stage(stage).team if CLASSIC.has_stage(stage) else None


@pytest.mark.parametrize(("call", "field"), [
    (lambda e: e.gaps(limit=0), "limit"),
    (lambda e: e.gaps(limit=True), "limit"),
    (lambda e: e.gaps(offset=-1), "offset"),
    (lambda e: e.gaps(owner=""), "owner"),
    (lambda e: e.health(limit=10_001), "limit"),
    (lambda e: e.health(team="nope"), "team"),
    (lambda e: e.health(owner="   "), "owner"),
])
def test_bad_page_arguments_name_the_field(engine: LifecycleEngine,
                                           call: Callable[[LifecycleEngine], object],
                                           field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        call(engine)
    assert raised.value.problems[0].field == field


def test_one_unknown_customer_is_still_unknown_with_a_filter(engine: LifecycleEngine) -> None:
    History(engine).register("known")
    with pytest.raises(UnknownCustomer):
        engine.health("nobody", day(1), team="marketing", config=CFG)
    assert engine.health("known", day(1), team="sales", config=CFG) == []
    assert [h.customer for h in engine.health("known", day(1), team="marketing",
                                              config=CFG)] == ["known"]
