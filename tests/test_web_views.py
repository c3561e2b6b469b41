"""The console's shared open gaps (web/views.py): a list indexed by kind, team and owner,
with the gaps of renewed customers merged when read, gives what one list of them all would."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import islice

from lifecycle_es.engine import Freshness
from lifecycle_es.web.reads import Gap
from lifecycle_es.web.views import OpenGaps, urgency

KINDS = ("unowned", "stalled", "renewal_at_risk", "handover_stale")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
FRESH = Freshness(read_models=["gaps_facts"], position=1, recorded_at=T0, age_seconds=0.0,
                  head=1, behind=0)


def _gaps(rnd: random.Random, customers: list[str]) -> list[Gap]:
    return [Gap(customer=c, kind=rnd.choice(KINDS), since=T0 + timedelta(hours=rnd.randrange(999)),
                team=rnd.choice(("sales", "success")), owner=rnd.choice((None, "ann", "bob")),
                stage=None, detail="", ref=f"r{n}")
            for c in customers for n in range(rnd.randrange(3))]


def _ranked(gaps: list[Gap]) -> list[tuple[tuple[object, ...], Gap]]:
    return sorted(((urgency(g), g) for g in gaps), key=lambda pair: pair[0])


def test_renewed_customers_read_as_one_list_would() -> None:
    rnd = random.Random(7)
    customers = [f"c{n}" for n in range(60)]
    truth = {c: [g for g in _gaps(rnd, [c])] for c in customers}
    shared = OpenGaps.of(_ranked([g for gs in truth.values() for g in gs]), FRESH, T0)
    for _ in range(5):  # renewals, some to no gap at all
        renewed = {c: _ranked(_gaps(rnd, [c])) for c in rnd.sample(customers, 8)}
        truth.update({c: [g for _, g in pairs] for c, pairs in renewed.items()})
        shared = shared.with_renewed(renewed, FRESH, T0)
        everything = [g for _, g in _ranked([g for gs in truth.values() for g in gs])]
        for views in (shared, shared.folded()):
            for kind, team, owner in (("", "", ""), ("stalled", "", ""), ("", "sales", "ann"),
                                      ("unowned", "success", ""), ("", "", "bob")):
                want = [g for g in everything if (not kind or g.kind == kind)
                        and (not team or g.team == team) and (not owner or g.owner == owner)]
                total, found = views.select(kind, team, owner)
                assert total == len(want)
                assert list(islice(found, 5, 15)) == want[5:15]
    assert shared.renewed and not shared.folded().renewed
