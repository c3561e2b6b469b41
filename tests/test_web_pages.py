"""The console's pages and actions on SQLite and PostgreSQL, with the live follower running:
the cockpit's order, filters and pages, the customer page, acting through the commands with
the signed-in user as actor, read-your-writes, the CLI's messages next to the field."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from cli_helpers import in_process
from web_helpers import TestClient, add_customer, add_users, client, demo_with_users, sign_in

from lifecycle_es import LifecycleEngine
from lifecycle_es.web import cockpit_page_size


@pytest.fixture
def engine(durable_store_url: str) -> Iterator[LifecycleEngine]:
    e = LifecycleEngine(durable_store_url)
    add_users(e)
    add_customer(e, "acme", "Acme")
    add_customer(e, "zeta", "Zeta", handover_to="sales")
    yield e
    e.close()


def _pending_customers(page: str) -> list[str]:
    return re.findall(r'<a href="/customers/([^"]+)">', page.split("<h2>Decided")[0])


def test_accepting_a_handover_takes_it_off_the_pending_list(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "ann")  # member of success: acts for success only
        assert sorted(_pending_customers(c.get("/handovers").text)) == ["acme", "zeta"]
        r = c.post("/customers/acme/handovers/h1/accept", data={"csrf_token": token},
                   follow_redirects=False)
        assert r.status_code == 303 and "lagging" not in r.headers["location"]
        shown = c.get(r.headers["location"]).text
        assert "Recorded (accept)" in shown and "success accepted" not in shown
        assert "accepted, sent" in shown  # read-your-writes: the read model has it
        assert _pending_customers(c.get("/handovers").text) == ["zeta"]
        r = c.post("/customers/zeta/handovers/h1/accept", data={"csrf_token": token})
        assert r.status_code == 403  # a handover to sales: not ann's team
    last = engine.audit.timeline("acme")[-1]
    assert (last.type, last.actor, last.team) == ("handover_accepted", "ann", "success")


def test_the_actor_and_team_never_come_from_the_form(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "lea")  # lead of sales: acts for every team
        r = c.post("/customers/acme/check-in",
                   data={"csrf_token": token, "notes": "called", "actor": "mallory",
                         "team": "marketing"}, follow_redirects=False)
        assert r.status_code == 303
    last = engine.audit.timeline("acme")[-1]
    assert (last.type, last.actor, last.team) == ("check_in", "lea", "sales")


def test_a_refused_command_shows_the_cli_message_by_its_field(engine: LifecycleEngine) -> None:
    before = engine.customer("acme").version
    with client(engine) as c:
        token = sign_in(c, "ann")
        r = c.post("/customers/acme/stage", data={"csrf_token": token, "to_stage": "nowhere"})
        assert r.status_code == 422
        assert "to_stage=&#39;nowhere&#39;: customer &#39;acme&#39;: not a stage of model" \
            in r.text
        r = c.post("/customers/acme/handovers/h1/reject", data={"csrf_token": token,
                                                                 "reason": "x" * 10_001})
        assert r.status_code == 422 and "reason=" in r.text
    assert engine.customer("acme").version == before  # nothing written


def test_changing_the_stage_is_seen_on_the_next_page(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "ann")
        r = c.post("/customers/acme/stage", data={"csrf_token": token,
                                                  "to_stage": "consideration"})
        assert r.status_code == 200 and "Recorded (stage)" in r.text
        assert "<dt>Stage</dt><dd>consideration since" in r.text


def test_cockpit_order_filters_and_pages(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        sign_in(c, "ann")
        page = c.get("/").text
        assert "open gap(s)" in page and "Acme" in page and "Zeta" in page
        assert re.search(r"Data as of event \d+", page)  # freshness at the foot
        only_sales = c.get("/?team=sales").text
        assert "Zeta" in only_sales
        assert "Acme" not in c.get("/?segment=enterprise").text
        assert "No open gap matches" in c.get("/?mine=on").text  # ann owns nobody
        bad = c.get("/?kind=nonsense").text
        assert "kind=&#39;nonsense&#39;: unknown gap kind" in bad
        counts = [int(n) for n in re.findall(r'<small id="gap-count">(\d+) open gap', page)]
        assert counts and counts[0] > 0
        assert f"page 1 of {-(-counts[0] // cockpit_page_size())}" in page


def test_customer_page_as_of_and_timeline(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        sign_in(c, "ann")
        page = c.get("/customers/acme").text
        assert "handover sent" in page and "grow" in page and "churn" in page
        assert "<td>bob</td><td>sales</td>" in page  # actor and team of the timeline
        past = c.get("/customers/acme?as_of=2024-01-02T12:00:00Z").text
        assert "0 open handover(s)" in past
        assert "1 open handover(s)" in c.get("/customers/acme?as_of=2024-02-01").text
        assert "as_of=&#39;yesterday&#39;" in c.get("/customers/acme?as_of=yesterday").text
        assert c.get("/customers/nobody").status_code == 404


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_with_users(tmp_path_factory, "web_demo")


def test_campaigns_metrics_and_audit_pages_on_the_demo(demo_store: str) -> None:
    engine = LifecycleEngine(demo_store)
    try:
        with client(engine) as c:
            sign_in(c, "cora")  # compliance: sees the audit trail
            listing = c.get("/campaigns").text
            keys = re.findall(r'href="/campaigns/([^"]+)"', listing)
            assert keys and ("running" in listing or "past" in listing)
            one = c.get(f"/campaigns/{keys[0]}")
            assert one.status_code == 200 and "Customers touched" in one.text
            assert c.get("/campaigns/no-such-campaign").status_code == 404
            metrics = c.get("/metrics?from=2025-01-01&to=2025-07-01").text
            assert "2025-01-01 → 2025-07-01" in metrics and "<svg" in metrics
            assert ' style="' not in metrics  # the CSP allows no inline style
            assert "The same dates a year earlier (2024-01-01 → 2024-07-01)" in metrics
            assert re.search(r"Data as of event \d+", metrics)
            assert "from=&#39;someday&#39;: not a date" in c.get("/metrics?from=someday").text
            audit = c.get("/audit?type=user_added").text
            assert audit.count("user added") == 4  # the four users of the console
            older = re.search(r'href="/audit\?([^"]+)"', c.get("/audit").text)
            assert older is not None and "after=" in older.group(1)
            token = sign_in(c, "cora")
            customer = re.findall(r'href="/customers/([^"]+)"', c.get("/").text)[0]
            assert "Hash chain not verified" in c.get(f"/customers/{customer}").text
            r = c.post("/audit/verify", data={"csrf_token": token})
            assert r.status_code == 200 and "Intact" in r.text and "chained" in r.text
            assert re.search(r"Hash chain verified [\d-]+ [\d:]+ UTC: intact",
                             c.get(f"/customers/{customer}").text)
        with client(engine) as c:
            token = sign_in(c, "ann")  # a member: no audit page, no verification
            assert c.get("/audit").status_code == 403
            assert c.post("/audit/verify", data={"csrf_token": token}).status_code == 403
            assert 'href="/audit"' not in c.get("/").text
    finally:
        engine.close()


def test_erasure_needs_the_role_and_the_customers_id(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "lea")  # a lead acts for every team, but does not erase
        assert "Erase personal data" not in c.get("/customers/acme").text
        r = c.post("/customers/acme/erase", data={"csrf_token": token, "reason": "req-1",
                                                  "confirm": "acme"})
        assert r.status_code == 403
    with client(engine) as c:
        token = sign_in(c, "cora")
        r = c.post("/customers/acme/erase", data={"csrf_token": token, "reason": "req-1",
                                                  "confirm": "zeta"})
        assert r.status_code == 422 and "type the customer&#39;s id" in r.text
        assert engine.customer("acme").state.erased_at is None  # nothing written
        r = c.post("/customers/acme/erase", data={"csrf_token": token, "reason": "req-1",
                                                  "confirm": "acme"})
        assert r.status_code == 200 and "Recorded (erase)" in r.text
        assert "<h1>[erased]" in r.text and "Acme" not in r.text
    assert engine.customer("acme").state.erased_at is not None
    assert engine.audit.timeline("acme")[-1].actor == "cora"


def test_data_access_export_in_the_console_and_the_cli(
        engine: LifecycleEngine, durable_store_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    engine.check_in(customer="acme", at="2024-01-04T00:00:00Z", actor="ann", team="success",
                    notes="asked about <pricing>")
    caplog.set_level(logging.INFO, logger="lifecycle_es")
    with client(engine) as c:
        sign_in(c, "ann")  # a member: no export
        assert c.get("/customers/acme/export.json").status_code == 403
        sign_in(c, "cora")
        r = c.get("/customers/acme/export.json")
        assert r.status_code == 200
        assert r.headers["content-disposition"] == 'attachment; filename="customer-acme.json"'
        web = orjson.loads(r.content)
        assert c.get("/customers/nobody/export.json").status_code == 404
    assert "console.customer_exported" in caplog.text
    assert web["customer"] == "acme"
    assert [e["type"] for e in web["events"]] == ["customer_registered", "handover_sent",
                                                  "check_in"]
    assert web["events"][0]["fields"]["name"] == "Acme"  # personal fields decrypted
    assert web["events"][2]["fields"]["notes"] == "asked about <pricing>"
    assert web["read_models"]["current_stage"]["name"] == "Acme"
    assert web["read_models"]["handover_history"][0]["document"]["goals"] == ["grow"]
    code, out, err = in_process(capsys, monkeypatch, durable_store_url, "export", "acme")
    assert code == 0, err
    assert orjson.loads(out) == web  # the same document from the CLI


def test_send_a_handover_and_record_a_touchpoint(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        token = sign_in(c, "ann")  # success
        r = c.post("/customers/acme/handovers", data={
            "csrf_token": token, "to_team": "support", "from_team": "marketing",
            "goals": "adopt reports\n\nfewer tickets", "notes": "VIP"})
        assert r.status_code == 200 and "Recorded (handover)" in r.text
        assert "success → support" in r.text and "adopt reports, fewer tickets" in r.text
        r = c.post("/customers/acme/touchpoint", data={"csrf_token": token, "channel": ""})
        assert r.status_code == 422 and "channel=" in r.text
        r = c.post("/customers/acme/touchpoint", data={"csrf_token": token,
                                                       "channel": "webinar"})
        assert r.status_code == 200 and "Recorded (touchpoint)" in r.text
    sent = [e for e in engine.audit.timeline("acme") if e.type == "handover_sent"][-1]
    assert (sent.actor, sent.team, sent.fields["from_team"]) == ("ann", "success", "success")
    assert engine.audit.timeline("acme")[-1].fields["channel"] == "webinar"


def _stale(c: TestClient) -> list[str]:
    """The customers of the cockpit's stale handovers."""
    return re.findall(r'<a href="/customers/([^"]+)">', c.get("/?kind=handover_stale").text)


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The customer of each ``gaps`` call of any engine from now on (None: every customer;
    the console's views read through an engine of their own)."""
    calls: list[str | None] = []
    original = LifecycleEngine.gaps

    def counted(self: LifecycleEngine, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("customer"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LifecycleEngine, "gaps", counted)
    return calls


def test_requests_filter_the_shared_gaps_and_a_write_renews_its_customers(
        engine: LifecycleEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counted(monkeypatch)
    with client(engine, views_seconds=3600) as c:  # no background renewal in this test
        token = sign_in(c, "ann")
        for query in ("", "?team=sales", "?kind=unowned", "?mine=on", "?owner=ann&mine=on"):
            assert c.get(f"/{query}").status_code == 200
        assert calls == [None]  # computed once, before the first request: requests filter
        assert sorted(_stale(c)) == ["acme", "zeta"]
        r = c.post("/customers/acme/handovers/h1/accept", data={"csrf_token": token},
                   follow_redirects=False)
        assert r.status_code == 303 and "lagging" not in r.headers["location"]
        assert _stale(c) == ["zeta"]  # read-your-writes: the accepted one left the cockpit
        assert calls == [None, "acme"]  # only the written customer's gaps were computed


def test_the_shared_gaps_follow_other_processes_writes_by_customer(
        engine: LifecycleEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counted(monkeypatch)
    with client(engine, views_seconds=0.05) as c:
        sign_in(c, "ann")
        assert sorted(_stale(c)) == ["acme", "zeta"]
        other = LifecycleEngine(engine.store)  # another process's write, not this console's
        try:
            other.accept_handover(customer="zeta", handover_id="h1", actor="sid",
                                  team="sales", at="2024-01-04T09:00:00Z")
        finally:
            other.close()
        deadline = time.monotonic() + 20
        while _stale(c) != ["acme"]:
            assert time.monotonic() < deadline, "the cockpit never showed the write"
            time.sleep(0.05)
        assert "Data as of event" in c.get("/").text
    assert calls[0] is None and "zeta" in calls[1:]
    assert None not in calls[1:]  # renewed by customer, not in full


def test_on_a_read_store_pages_say_how_far_behind_they_are(durable_store_url: str) -> None:
    primary = LifecycleEngine(durable_store_url)
    add_users(primary)
    add_customer(primary)
    primary.projections.catch_up()  # what a separate `projections run` would do
    engine = LifecycleEngine(durable_store_url, read_store=durable_store_url)
    try:
        with client(engine, follow=False, write_wait_seconds=0.3) as c:
            token = sign_in(c, "ann")
            assert "up to date with the log" in c.get("/handovers").text
            r = c.post("/customers/acme/handovers/h1/accept", data={"csrf_token": token},
                       follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].endswith("&lagging=1")
            page = c.get(r.headers["location"]).text
            assert "have not caught up yet" in page
            assert "1 newer event(s) not yet included" in page  # the footer says so
            assert "pending, sent" in page  # the read store's read models, as they are
        assert primary.customer("acme").state.handovers["h1"].status == "accepted"
    finally:
        engine.close()
        primary.close()


def test_the_metrics_of_a_period_are_shared(engine: LifecycleEngine,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle_es.web.pages import metrics as metrics_page

    calls: list[object] = []
    original = metrics_page.metrics_data

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(args[1:3])
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(metrics_page, "metrics_data", counted)
    default = metrics_page._period_default()
    with client(engine) as c:
        assert calls == [default]  # the default period's: in the background, before requests
        sign_in(c, "ann")
        assert c.get("/metrics").status_code == 200
        assert calls == [default]  # a request only reads it
        for _ in range(3):
            assert c.get("/metrics?from=2024-01-01&to=2024-04-01").status_code == 200
        assert len(calls) == 2  # another period: computed by the first request, shared
        assert c.get("/metrics?from=2024-01-01&to=2024-05-01").status_code == 200
        assert len(calls) == 3  # another period: its own computation


def test_the_customer_page_shows_the_latest_events_of_a_long_timeline(
        engine: LifecycleEngine) -> None:
    from lifecycle_es.web.pages.customers import TIMELINE_ROWS

    for n in range(TIMELINE_ROWS):  # registration and handover, then one more than shown
        engine.check_in(customer="acme", at=f"2024-02-01T09:{n // 60:02d}:{n % 60:02d}Z",
                        actor="ann", team="success", notes=f"call {n}")
    with client(engine) as c:
        sign_in(c, "cora")  # compliance: may open the audit
        page = c.get("/customers/acme").text
        assert f"the latest {TIMELINE_ROWS} of {TIMELINE_ROWS + 2} events" in page
        assert page.count("<td>check in") == TIMELINE_ROWS  # newest first: no registration
        assert "customer registered" not in page.split("<h2>Timeline")[1]
        assert 'href="/audit?customer=acme"' in page
        sign_in(c, "ann")  # a member: no audit link
        assert 'href="/audit?customer=acme"' not in c.get("/customers/acme").text
