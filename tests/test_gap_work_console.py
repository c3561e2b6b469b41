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


def test_assign_to_me_snooze_and_dismiss_from_the_customer_page(
        engine: LifecycleEngine) -> None:
    gap = "handover_stale:acme:h1"
    before = engine.customer("acme").version
    with client(engine) as c:
        token = sign_in(c, "ann")  # team success: the handover's receiving team
        page = c.get("/customers/acme").text
        assert f'data-gap="{gap}"' in page and "Assign to me" in page
        assert c.post("/customers/acme/gaps/assign",  # no CSRF token: refused
                      data={"gap_id": gap}).status_code == 403
        r = c.post("/customers/acme/gaps/assign", data={"csrf_token": token, "gap_id": gap})
        assert r.status_code == 200 and "Recorded (gap assigned)" in r.text
        assert "; assigned to ann" in r.text
        assert _rows(c.get("/?kind=handover_stale&mine=on").text) == {"Acme": "ann"}
        # hostile: a year out of range, a huge reason, another customer's gap, markup
        r = c.post("/customers/acme/gaps/snooze", data={
            "csrf_token": token, "gap_id": gap, "until": "9999-01-01", "reason": "x"})
        assert r.status_code == 422 and "until=&#39;9999-01-01&#39;: outside" in r.text
        r = c.post("/customers/acme/gaps/dismiss", data={
            "csrf_token": token, "gap_id": gap, "reason": "x" * 10_001})
        assert r.status_code == 422 and "reason=" in r.text
        r = c.post("/customers/acme/gaps/dismiss", data={
            "csrf_token": token, "gap_id": "handover_stale:yolo:h1", "reason": "x"})
        assert r.status_code == 404
        assert engine.customer("acme").version == before + 1  # only the assignment
        # zeta's handover went to sales: ann (success, member) may not act on it
        r = c.post("/customers/zeta/gaps/dismiss", data={
            "csrf_token": token, "gap_id": "handover_stale:zeta:h1", "reason": "x"})
        assert r.status_code == 403
        r = c.post("/customers/acme/gaps/snooze", data={
            "csrf_token": token, "gap_id": gap, "until": "2199-01-01", "reason": "<i>x</i>"})
        assert r.status_code == 200 and "; snoozed until 2199-01-01" in r.text
        assert "Acme" not in _rows(c.get("/?kind=handover_stale").text)
        r = c.post("/customers/acme/gaps/dismiss", data={
            "csrf_token": token, "gap_id": gap, "reason": "<script>x</script>"})
        assert r.status_code == 200
        assert "; dismissed: &lt;script&gt;x&lt;/script&gt;" in r.text
    events = engine.history("acme")[-3:]
    assert [(e.TYPE, e.actor, e.team) for e in events] == [
        ("gap_assigned", "ann", "success"), ("gap_snoozed", "ann", "success"),
        ("gap_dismissed", "ann", "success")]
