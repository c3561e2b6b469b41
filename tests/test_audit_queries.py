"""Audit queries (timeline, point-in-time state, filtered events) on every store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from audit_story import Story, tell

from lifecycle_es import InvalidInput, LifecycleEngine, UnknownCustomer
from lifecycle_es.reading.audit.queries import NotYetKnown
from lifecycle_es.reading.audit.records import AuditEvent, parse_time


@pytest.fixture
def story(engine: LifecycleEngine) -> Story:
    return tell(engine)


def all_events(engine: LifecycleEngine, **filters: object) -> list[AuditEvent]:
    """Every page of a query, following the cursors."""
    out: list[AuditEvent] = []
    after = None
    while True:
        page = engine.audit.events(after=after, **filters)  # type: ignore[arg-type]
        out.extend(page.events)
        if page.next_cursor is None:
            return out
        after = page.next_cursor


def test_timeline_lists_every_event_with_both_times_and_voids_linked(
    engine: LifecycleEngine, story: Story
) -> None:
    tl = engine.audit.timeline("acme")
    assert [e.version for e in tl] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.type for e in tl] == ["customer_registered", "stage_changed", "owner_assigned",
                                    "purchase", "nps_answer", "event_voided", "handover_sent"]
    assert tl[2].voided and tl[2].voided_by == 6
    assert tl[5].voids == 3 and not tl[5].voided
    assert [e.version for e in tl if e.voided] == [3]
    nps = tl[4]
    assert nps.occurred_at == datetime(2024, 1, 20, 9, tzinfo=UTC)
    assert story.t1 < nps.recorded_at < story.t2  # recorded later than it happened
    assert (nps.actor, nps.team, nps.fields) == ("cat", "success",
                                                 {"score": 9, "comment": "great"})
    assert tl[3].correlation_id == "req-1" and tl[3].fields["plan"] == "pro"
    assert "comment" not in nps.summary  # personal fields stay out of the one-line summary


def test_current_state_is_the_domain_fold(engine: LifecycleEngine, story: Story) -> None:
    st = engine.audit.state("acme")
    agg = engine.customer("acme").state
    assert (st.stage, st.owner, st.owner_team, st.paying, st.mrr, st.last_nps) == (
        agg.stage, agg.owner, agg.owner_team, agg.paying, agg.mrr, agg.last_nps)
    assert st.owner is None  # the assignment was voided
    assert [h.handover_id for h in st.open_handovers] == ["h1"]
    assert st.stage == "consideration" and st.stage_team == "sales"
    assert st.last_version == 7 and st.events_applied == 5  # v3 voided, v6 is the void


def test_as_known_at_ignores_what_was_recorded_later(engine: LifecycleEngine,
                                                     story: Story) -> None:
    st = engine.audit.state("acme", as_known_at=story.t1)
    assert (st.owner, st.paying, st.mrr, st.last_nps) == ("bob", True, 5000, None)
    assert st.last_version == 4
    later = engine.audit.state("acme", as_known_at=story.t2)
    assert (later.owner, later.last_nps, later.open_handovers) == (None, 9, [])


def test_as_of_uses_business_time_and_back_filled_events(engine: LifecycleEngine,
                                                         story: Story) -> None:
    # 2024-01-25: the back-filled NPS (01-20) counts, the purchase (02-01) does not, and the
    # void (occurred 02-05) has not happened yet: bob still owns the customer.
    st = engine.audit.state("acme", as_of="2024-01-25")
    assert (st.owner, st.paying, st.mrr, st.last_nps) == ("bob", False, 0, 9)
    after_void = engine.audit.state("acme", as_of="2024-02-06T00:00:00+00:00")
    assert (after_void.owner, after_void.paying, after_void.mrr) == (None, True, 5000)
    assert after_void.open_handovers == []
    # The two views differ exactly because of the back-fill.
    known = engine.audit.state("acme", as_known_at=story.t1)
    assert known.last_nps is None and st.last_nps == 9


def test_views_combine_and_version_selects_a_prefix(engine: LifecycleEngine,
                                                    story: Story) -> None:
    v3 = engine.audit.state("acme", version=3)
    assert (v3.stage, v3.owner, v3.paying, v3.last_version) == ("consideration", "bob",
                                                                False, 3)
    both = engine.audit.state("acme", as_of="2024-01-25", as_known_at=story.t1)
    assert (both.owner, both.last_nps, both.paying) == ("bob", None, False)


def test_state_before_registration_and_bad_inputs(engine: LifecycleEngine,
                                                  story: Story) -> None:
    with pytest.raises(NotYetKnown, match="not registered"):
        engine.audit.state("acme", as_of="2023-12-31")
    with pytest.raises(InvalidInput, match="version"):
        engine.audit.state("acme", version=8)
    with pytest.raises(InvalidInput, match="as_of='yesterday'"):
        engine.audit.state("acme", as_of="yesterday")
    with pytest.raises(UnknownCustomer):
        engine.audit.timeline("nobody")
    with pytest.raises(UnknownCustomer):
        engine.audit.state("nobody")


def test_times_dates_are_midnight_utc_and_naive_is_utc() -> None:
    assert parse_time("t", "2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_time("t", "2024-03-01T10:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert parse_time("t", "2024-03-01T10:00+02:00") == datetime(2024, 3, 1, 8, tzinfo=UTC)


def test_events_index_every_event_of_every_aggregate(engine: LifecycleEngine,
                                                     story: Story) -> None:
    rows = all_events(engine, order="oldest", limit=3)
    assert len(rows) == 10  # 7 of acme, 2 of beta, 1 of the campaign
    positions = [r.position for r in rows]
    assert positions == sorted(positions) and len(set(positions)) == 10
    assert [r.position for r in all_events(engine, limit=4)] == positions[::-1]
    voided = [r for r in rows if r.voided_by is not None]
    assert [(r.customer, r.version, r.voided_by) for r in voided] == [("acme", 3, 6)]
    camp = [r for r in rows if r.aggregate == "campaign"]
    assert [(r.campaign, r.customer, r.type) for r in camp] == [
        ("spring", None, "campaign_announced")]


def test_events_filters(engine: LifecycleEngine, story: Story) -> None:
    def types(**f: object) -> list[str]:
        return [r.type for r in all_events(engine, order="oldest", **f)]

    assert types(actor="cat") == ["nps_answer"]
    assert types(team="marketing") == ["customer_registered", "campaign_announced",
                                       "touchpoint"]
    assert types(customer="beta") == ["customer_registered", "touchpoint"]
    assert types(types=["purchase", "event_voided"]) == ["purchase", "event_voided"]
    assert types(correlation_id="req-7") == ["customer_registered"]
    assert types(campaign="spring") == ["campaign_announced", "touchpoint"]
    # business time, inclusive bounds; a date is midnight UTC
    assert types(since="2024-01-20T09:00:00Z", until="2024-02-01T09:00:00Z") == [
        "purchase", "nps_answer"]
    assert types(customer="acme", since="2024-02-05") == ["event_voided", "handover_sent"]
    # recording time: the back-filled answer was recorded after t1
    assert types(customer="acme", since=story.t1, until=story.t2, clock="recorded") == [
        "nps_answer", "event_voided"]
    assert types(actor="bob", team="sales", types=["handover_sent"]) == ["handover_sent"]
    assert types(actor="nobody") == []


def test_events_bad_filters_are_clear_errors(engine: LifecycleEngine, story: Story) -> None:
    with pytest.raises(InvalidInput, match=r"type='stage_change'.*unknown event type"):
        engine.audit.events(types=["stage_change"])
    with pytest.raises(InvalidInput, match="since='2024-02-30'"):
        engine.audit.events(since="2024-02-30")
    with pytest.raises(UnknownCustomer, match="nobody"):
        engine.audit.events(customer="nobody")
    with pytest.raises(InvalidInput, match="after='abc'"):
        engine.audit.events(after="abc")
    with pytest.raises(InvalidInput, match="limit=0"):
        engine.audit.events(limit=0)
    with pytest.raises(InvalidInput, match="order='sideways'"):
        engine.audit.events(order="sideways")  # type: ignore[arg-type]


def test_index_follows_new_events_and_rebuild_keeps_positions(engine: LifecycleEngine,
                                                              story: Story) -> None:
    before = all_events(engine, order="oldest")
    engine.check_in(customer="beta", at="2024-03-04T09:00:00Z", actor="eve", team="success")
    after = all_events(engine, order="oldest")
    assert after[:-1] == before and after[-1].type == "check_in"
    assert after[-1].position > before[-1].position
    engine.projections.rebuild(["audit_index"])
    assert all_events(engine, order="oldest") == after


def test_changed_names_the_customers_and_campaigns_a_range_of_the_log_touched(
    engine: LifecycleEngine, story: Story
) -> None:
    engine.projections.catch_up()
    head = engine.projections.head()
    everything = engine.audit.changed(0, head)
    assert everything.customers == {"acme", "beta"} and everything.campaigns
    engine.check_in(customer="beta", at="2024-05-01T09:00:00Z", actor="cat", team="success")
    engine.projections.catch_up()
    assert engine.audit.changed(head, engine.projections.head()).customers == {"beta"}
    assert not engine.audit.changed(head, engine.projections.head()).campaigns
    assert engine.audit.changed(head, head).customers == frozenset()
    for after, upto in ((-1, head), (head + 1, head), (True, head)):
        with pytest.raises(InvalidInput, match="after="):
            engine.audit.changed(after, upto)
    for after, upto in ((0, 2**70), (0, "9"), (None, head)):
        with pytest.raises(InvalidInput, match=r"upto=|after="):
            engine.audit.changed(after, upto)  # type: ignore[arg-type]
