"""The demo history exercises every gap kind, as the checks themselves see it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from gap_helpers import CFG

from lifecycle_es import LifecycleEngine
from lifecycle_es.cli.demo import run_demo
from lifecycle_es.demo import generate, parse_all
from lifecycle_es.domain.stage_model import CLASSIC, CUSTOMER_SUCCESS, StageModel
from lifecycle_es.reading.lifecycle_checks.gaps import KINDS

UNTIL = date(2026, 11, 1)


@pytest.mark.parametrize("model", [CLASSIC, CUSTOMER_SUCCESS], ids=lambda m: m.name)
def test_demo_history_has_a_gap_of_every_kind(
    model: StageModel, store_url_factory: Callable[[str], str]
) -> None:
    engine = LifecycleEngine(store_url_factory("sqlite"), stage_model=model)
    try:
        engine.record_many(parse_all(generate(200, 1, model, UNTIL)))
        as_of = datetime(UNTIL.year, UNTIL.month, UNTIL.day, tzinfo=UTC)
        found = Counter(g.kind for g in engine.gaps(as_of, config=CFG))
        assert set(found) == set(KINDS), found
        # and every gap names who must act
        assert all(g.team for g in engine.gaps(as_of, config=CFG))
    finally:
        engine.close()


def test_run_demo_ends_with_metrics_gaps_and_the_report_command(
    store_url_factory: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_url_factory("sqlite")
    engine = LifecycleEngine(url)
    try:
        run_demo(engine, customers=60, seed=5, until=UNTIL)
    finally:
        engine.close()
    out = capsys.readouterr().out
    tail = out[out.index("customers per stage"):]
    assert "This year:" in tail and "customer retention rate" in tail and "NPS (" in tail
    assert "gaps now" in tail and all(kind in tail for kind in KINDS)
    assert f"lifecycle-es --store {url} report --out report.html" in tail.replace("\n", "")
