"""Announcing, amending and ending a campaign from the console (SQLite and PostgreSQL, the
live follower running): the signed-in user as actor, their team as team, the owning team
theirs unless a lead chooses; the import's messages next to the field; read-your-writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from web_helpers import add_users, client, sign_in

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection import queries

GOOD = {"campaign": "spring-24", "name": "Spring offer", "offer": "two months free",
        "discount_percent": "15", "starts": "2024-03-01", "ends": "2024-05-31",
        "segment": "smb"}


@pytest.fixture
def engine(durable_store_url: str) -> Iterator[LifecycleEngine]:
    e = LifecycleEngine(durable_store_url)
    add_users(e)
    yield e
    e.close()


def _registry(engine: LifecycleEngine) -> dict[str, dict[str, Any]]:
    return {r["campaign"]: r for r in queries.campaigns(engine.reader.projections)}


def _error(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" role="alert" id="error-{field}">([^<]*)</p>', html)
    assert found, f"no error next to {field}"
    return found.group(1)


def test_announce_amend_and_end_a_campaign(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "ann")  # member of success
        r = c.post("/campaigns", data={"csrf_token": token, **GOOD, "actor": "mallory",
                                       "team": "marketing"}, follow_redirects=False)
        assert r.status_code == 303 and "lagging" not in r.headers["location"]
        assert r.headers["location"] == "/campaigns/spring-24?done=announce"
        page = c.get(r.headers["location"]).text
        assert "Recorded (announce)" in page and "<h1>Spring offer" in page
        assert "<dt>Discount</dt><dd>15%</dd>" in page
        assert "Spring offer" in c.get("/campaigns").text  # read-your-writes on the list
        r = c.post("/campaigns/spring-24/amend", data={
            "csrf_token": token, **{**GOOD, "discount_percent": "20", "ends": "2024-06-30"}})
        assert r.status_code == 200 and "Recorded (amend)" in r.text
        assert "<dd>20%</dd>" in r.text and "2024-03-01 → 2024-06-30" in r.text
        r = c.post("/campaigns/spring-24/end", data={"csrf_token": token, "reason": "sold out"})
        assert r.status_code == 200 and "Recorded (end)" in r.text and ", ended " in r.text
        assert "End it now" not in r.text  # an ended campaign is not changed again
    row = _registry(engine)["spring-24"]
    assert (row["owning_team"], row["discount_percent"], str(row["ends"])) == (
        "success", 20, "2024-06-30")
    events = engine.audit.events(campaign="spring-24").events[::-1]  # oldest first
    assert [(e.type, e.actor, e.team) for e in events] == [
        ("campaign_announced", "ann", "success"), ("campaign_amended", "ann", "success"),
        ("campaign_ended", "ann", "success")]
    print(events[1].summary)
    assert "discount_percent" in events[1].summary and "name" not in events[1].summary


def test_the_owning_team_is_the_users_unless_a_lead_chooses(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "ann")  # a member acts for success only
        assert 'name="owning_team"' not in c.get("/campaigns").text
        r = c.post("/campaigns", data={"csrf_token": token, **GOOD,
                                       "owning_team": "marketing"})
        assert r.status_code == 403
        token = sign_in(c, "lea")  # a lead (sales) chooses
        assert '<select name="owning_team">' in c.get("/campaigns").text
        r = c.post("/campaigns", data={"csrf_token": token, **GOOD,
                                       "owning_team": "marketing"}, follow_redirects=False)
        assert r.status_code == 303
        r = c.post("/campaigns", data={"csrf_token": token, **GOOD, "campaign": "c2",
                                       "owning_team": "nobody"})
        assert r.status_code == 422
        assert "owning_team=&#39;nobody&#39;: unknown team" in _error(r.text, "owning_team")
        token = sign_in(c, "ann")  # marketing's campaign: ann may not change or end it
        assert "Save the changes" not in c.get("/campaigns/spring-24").text
        r = c.post("/campaigns/spring-24/end", data={"csrf_token": token})
        assert r.status_code == 403
        token = sign_in(c, "cora")  # compliance does not act
        assert "Announce a campaign" not in c.get("/campaigns").text
        assert c.post("/campaigns", data={"csrf_token": token, **GOOD,
                                          "campaign": "c3"}).status_code == 403
        assert c.post("/campaigns/nope/end", data={"csrf_token": token}).status_code == 404
    row = _registry(engine)["spring-24"]
    assert (row["owning_team"], row["ended_at"]) == ("marketing", None)
    assert set(_registry(engine)) == {"spring-24"}


HOSTILE = [
    ("name", "<script>alert(1)</script>", "name", None),  # markup: stored as text, inert
    ("name", "Spring\x00offer", "name", "control character"),
    ("offer", "x" * 20_000, "offer", "20000 characters"),
    ("discount_percent", "101", "discount_percent", "less than or equal to 100"),
    ("discount_percent", "9" * 5000, "discount_percent", "valid integer"),
    ("discount_percent", "-1", "discount_percent", "greater than or equal to 0"),
    ("discount_percent", "ten", "discount_percent", "valid integer"),
    ("starts", "2024-13-01", "starts", None),
    ("starts", "", "starts", "expected a date"),
    ("ends", "2024-02-01", "ends", "campaign ends before it starts"),
    ("campaign", "", "campaign", "empty"),
    ("campaign", "a\u200bb", "campaign", "invisible character"),
    ("segment", "s" * 201, "segment", "at most 200 characters"),
]


@pytest.mark.parametrize(("field", "value", "where", "says"), HOSTILE,
                         ids=[f"{f}-{i}" for i, (f, *_) in enumerate(HOSTILE)])
def test_hostile_announcements(field: str, value: str, where: str, says: str | None) -> None:
    engine = LifecycleEngine("memory://")
    add_users(engine)
    try:
        with client(engine) as c:
            token = sign_in(c, "ann")
            r = c.post("/campaigns", data={"csrf_token": token, **GOOD, field: value})
            if says is None and field == "name":  # markup is a valid name: shown as text
                assert r.status_code == 200 and "<script>alert" not in r.text
                assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
                return
            assert r.status_code == 422, r.text[:300]
            message = _error(r.text, where)
            assert message.startswith(f"{where}=") and len(message) < 400
            if says:
                assert says in message
            assert len(r.text) < 200_000  # the form shows at most 10,000 characters again
        assert _registry(engine) == {}  # nothing written
    finally:
        engine.close()


def test_a_refused_amendment_shows_its_message_and_writes_nothing(
        engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "ann")
        c.post("/campaigns", data={"csrf_token": token, **GOOD})
        r = c.post("/campaigns/spring-24/amend", data={"csrf_token": token, **GOOD})
        assert r.status_code == 422  # the form as it was: nothing changes
        assert "amendment changes nothing" in _error(r.text, "campaign")
        r = c.post("/campaigns/spring-24/amend", data={"csrf_token": token, **GOOD,
                                                       "ends": "2024-01-01"})
        assert r.status_code == 422
        assert "campaign ends before it starts" in _error(r.text, "ends")
        assert 'value="2024-01-01"' in r.text  # what was typed, to correct it
        r = c.post("/campaigns/spring-24/amend", data={"csrf_token": token, **GOOD,
                                                       "discount_percent": "1e9"})
        assert "valid integer" in _error(r.text, "discount_percent")
        r = c.post("/campaigns/spring-24/announce", data={"csrf_token": token})
        assert r.status_code == 405  # no such action
    assert [e.type for e in engine.audit.events(campaign="spring-24").events] == [
        "campaign_announced"]
