"""Issue 27, item 1 in the console: the cockpit shows only open gaps (neither snoozed nor
dismissed) with their assignee, and "mine" includes the gaps assigned to you."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from web_helpers import add_customer, add_users, client, sign_in

from lifecycle_es import LifecycleEngine

WHO = {"at": "2024-01-06T09:00:00Z", "actor": "sue", "team": "success"}


@pytest.fixture
def engine(durable_store_url: str) -> Iterator[LifecycleEngine]:
    with LifecycleEngine(durable_store_url) as e:
        add_users(e)
        for key, to in (("acme", "success"), ("zeta", "sales"), ("yolo", "success")):
            add_customer(e, key, key.title(), handover_to=to)
        yield e


def _rows(page: str) -> dict[str, str]:
    """Customer name -> the row's "Assigned to" cell, for every row of the cockpit."""
    return dict(re.findall(r'<a href="/customers/[^"]+">([^<]+)</a>.*?'
                           r'data-label="Assigned to">([^<]*)</td>', page, flags=re.S))


def test_the_cockpit_shows_open_gaps_with_their_assignee(engine: LifecycleEngine) -> None:
    engine.assign_gap(customer="acme", gap_id="handover_stale:acme:h1", assignee="ann", **WHO)
    engine.snooze_gap(customer="zeta", gap_id="handover_stale:zeta:h1", until="2199-01-01",
                      reason="later", **WHO)
    yolo = [g.id for g in engine.gaps(kind="handover_stale") if g.customer == "yolo"]
    engine.dismiss_gap(customer="yolo", gap_id=yolo[0], reason="done", **WHO)
    with client(engine) as c:
        sign_in(c, "ann")
        page = c.get("/?kind=handover_stale").text
        assert "<th>Assigned to</th>" in page
        assert _rows(page) == {"Acme": "ann"}  # zeta snoozed, yolo dismissed
        assert _rows(c.get("/?kind=handover_stale&mine=on").text) == {"Acme": "ann"}
        page = c.get("/?kind=unowned").text  # zeta's other gaps are still open
        assert set(_rows(page)) == {"Acme", "Zeta", "Yolo"}
