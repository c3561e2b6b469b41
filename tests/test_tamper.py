"""Tamper evidence, the holes closed: settings, deleted customers, truncation against an anchor.

Every tampering is plain SQL behind the engine's back, on SQLite and PostgreSQL. docs/audit.md
("What is detected") cites each test by name: keep the two in step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from audit_story import tell
from test_audit_cli import cli
from test_audit_verify import Raw, kinds

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain import customer_id
from lifecycle_es.domain.stage_model import CUSTOMER_SUCCESS
from lifecycle_es.reading.audit.verify import VerifyReport, verify
from lifecycle_es.stores.chain import LOG_SCOPE, SETTINGS_SCOPE

AT = dict(at="2024-01-02T09:00:00Z", actor="ann", team="sales")


@pytest.fixture
def story(durable_store_url: str) -> Iterator[tuple[LifecycleEngine, Raw]]:
    """The audit story on a store that remembers its stage model, its audit_index built."""
    engine = LifecycleEngine(durable_store_url, stage_model="classic")
    tell(engine)
    engine.audit.events(limit=1)  # catches the audit_index up: it names deleted customers
    raw = Raw(durable_store_url, engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
    yield engine, raw
    raw.conn.close()
    engine.close()


def reopen(engine: LifecycleEngine, **kw: Any) -> LifecycleEngine:
    """A new engine on the same store (the old one closed)."""
    engine.close()
    return LifecycleEngine(engine.store, **kw)


#: where customers of classic stages that customer-success lacks go
TO_CS = {"awareness": "acquisition", "consideration": "acquisition", "purchase": "onboarding"}


def change_model(engine: LifecycleEngine) -> LifecycleEngine:
    """The store's model changed on purpose to customer-success (``stage-model set``)."""
    engine.set_stage_model(CUSTOMER_SUCCESS, mapping=TO_CS, actor="ann")
    return reopen(engine)


def anchored(engine: LifecycleEngine) -> str:
    """The anchor of a clean store, as ``--print-heads`` prints it."""
    report = verify(engine)
    anchor = report.anchor()
    assert report.clean and anchor is not None
    return anchor


def log_breaks(report: VerifyReport) -> list[tuple[str, int | None]]:
    return [(b.kind, b.position) for b in report.breaks if b.aggregate == "log"]


def last_position(raw: Raw) -> int:
    return int(raw.run(f"SELECT MAX({raw.nid}) FROM {raw.events}")[0][0])


def truncate_tail(raw: Raw, keep: int, *, keys: bool = True) -> None:
    """Remove every event and digest after position ``keep`` and roll the heads back to the
    stored digests, as a careful attacker would (the settings head is left alone), and
    (``keys``) the data key rows of customers left without events."""
    raw.run(f"DELETE FROM {raw.events} WHERE {raw.nid} > ?", keep)
    raw.run("DELETE FROM event_digests WHERE notification_id > ?", keep)
    raw.run("DELETE FROM chain_heads WHERE scope <> ?", SETTINGS_SCOPE)
    rows = raw.run("SELECT notification_id, originator_id, originator_version, digest "
                   "FROM event_digests ORDER BY notification_id")
    last = {r[1]: r for r in rows}
    heads = ([(LOG_SCOPE, rows[-1][0], rows[-1][2], rows[-1][3])] if rows else []) + [
        (oid, r[0], r[2], r[3]) for oid, r in last.items()]
    for head in heads:
        raw.run("INSERT INTO chain_heads VALUES (?, ?, ?, ?)", *head)
    if keys:
        raw.run("DELETE FROM lifecycle_keys WHERE aggregate_id NOT IN "
                "(SELECT DISTINCT originator_id FROM event_digests)")


def delete_customer(raw: Raw, customer: str, *, head: bool = False) -> None:
    """Every event and digest of ``customer`` (and its chain head when ``head``)."""
    oid = raw.oid(customer)
    raw.run(f"DELETE FROM {raw.events} WHERE originator_id = ?", oid)
    raw.run("DELETE FROM event_digests WHERE originator_id = ?", str(customer_id(customer)))
    if head:
        raw.run("DELETE FROM chain_heads WHERE scope = ?", str(customer_id(customer)))


# ------------------------------------------------------------------ the stage model


def test_untouched_store_with_a_stage_model_verifies_clean(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    engine, _ = story
    report = verify(engine)
    assert report.clean
    assert [(c.seq, c.key, c.origin, c.log_position) for c in report.settings] == [
        (1, "stage_model", "set", 0)]
    assert report.settings[0].value == engine.stage_model.model_dump_json()
    anchor = report.anchor()
    assert anchor is not None and anchor.startswith(f"{report.head.position}:")  # type: ignore[union-attr]
    assert anchor.endswith(f",settings=1:{report.settings[0].digest}")
    assert verify(engine, anchor=anchor).clean


def test_settings_update_by_sql_is_reported(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    raw.run("UPDATE lifecycle_settings SET value = ? WHERE key = 'stage_model'",
            CUSTOMER_SUCCESS.model_dump_json())
    engine = reopen(engine)
    assert engine.stage_model.name == CUSTOMER_SUCCESS.name  # the tampering is effective...
    report = verify(engine)
    assert [(b.kind, b.aggregate, b.key, b.version) for b in report.breaks] == [
        ("modified", "settings", "stage_model", 1)]  # ...and caught
    assert "differs from its last recorded change" in report.breaks[0].detail
    engine.close()


def test_settings_and_history_update_by_sql_is_reported(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    engine, raw = story
    forged = CUSTOMER_SUCCESS.model_dump_json()
    raw.run("UPDATE lifecycle_settings SET value = ? WHERE key = 'stage_model'", forged)
    raw.run("UPDATE settings_history SET value = ? WHERE seq = 1", forged)
    report = verify(engine)
    assert [(b.kind, b.key, b.version) for b in report.breaks] == [
        ("modified", "stage_model", 1)]
    assert "does not hash to its digest" in report.breaks[0].detail


def test_settings_row_delete_is_reported(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    raw.run("DELETE FROM lifecycle_settings WHERE key = 'stage_model'")
    report = verify(engine)
    assert [(b.kind, b.aggregate, b.key, b.version) for b in report.breaks] == [
        ("deleted", "settings", "stage_model", 1)]


def test_setting_inserted_by_sql_is_reported(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    raw.run("INSERT INTO lifecycle_settings VALUES ('extra', 'x')")
    assert kinds(verify(engine).breaks) == {("forged", "extra", None)}


def test_settings_history_row_delete_is_reported(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    engine = change_model(engine)
    raw.run("DELETE FROM settings_history WHERE seq = 1")
    assert kinds(verify(engine).breaks) == {("deleted", "stage_model", 1)}
    engine.close()


def test_stage_model_change_through_the_engine_is_clean_and_recorded(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    engine, _ = story
    engine = change_model(engine)
    report = verify(engine)
    assert report.clean
    assert [(c.seq, c.origin, c.log_position) for c in report.settings] == [
        (1, "set", 0), (2, "changed by ann", report.head.position)]  # type: ignore[union-attr]
    assert report.settings[1].value == CUSTOMER_SUCCESS.model_dump_json()
    engine.close()


def test_store_made_before_the_settings_chain_opens_verifies_and_is_adopted(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    """An older store (no settings_history, no settings head) verifies, then is adopted."""
    engine, raw = story
    raw.run("DROP TABLE settings_history")
    raw.run("DELETE FROM chain_heads WHERE scope = ?", SETTINGS_SCOPE)
    report = verify(engine)
    assert report.clean and report.settings == []  # nothing recorded, nothing to check
    engine = reopen(engine)  # opening migrates: the stored stage model is recorded as found
    report = verify(engine)
    assert report.clean
    assert [(c.seq, c.key, c.origin) for c in report.settings] == [
        (1, "stage_model", "adopted")]
    engine.close()


def test_rewritten_settings_chain_is_caught_only_by_an_anchor(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    """The documented limit: wiping the settings chain and changing the value passes (the
    next open adopts the value as found); the anchor catches it."""
    engine, raw = story
    anchor = anchored(engine)
    raw.run("DELETE FROM settings_history")
    raw.run("DELETE FROM chain_heads WHERE scope = ?", SETTINGS_SCOPE)
    raw.run("UPDATE lifecycle_settings SET value = ? WHERE key = 'stage_model'",
            CUSTOMER_SUCCESS.model_dump_json())
    engine = reopen(engine)
    assert verify(engine).clean
    report = verify(engine, anchor=anchor)
    assert [(b.kind, b.aggregate, b.version) for b in report.breaks] == [
        ("modified", "settings", 1)]
    engine.close()


def test_settings_rolled_back_is_caught_only_by_an_anchor(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    engine, raw = story
    old = engine.stage_model.model_dump_json()
    engine = change_model(engine)
    report = verify(engine)
    anchor = report.anchor()
    assert anchor is not None and anchor.endswith(f"settings=2:{report.settings[1].digest}")
    first = report.settings[0]
    raw.run("DELETE FROM settings_history WHERE seq = 2")
    raw.run("UPDATE chain_heads SET notification_id = 1, digest = ? WHERE scope = ?",
            bytes.fromhex(first.digest), SETTINGS_SCOPE)
    raw.run("UPDATE lifecycle_settings SET value = ? WHERE key = 'stage_model'", old)
    assert verify(engine).clean
    report = verify(engine, anchor=anchor)
    assert [(b.kind, b.aggregate, b.version) for b in report.breaks] == [
        ("truncated", "settings", 2)]
    engine.close()


# ------------------------------------------------------------------ a deleted customer


def test_deleted_customer_is_reported_at_its_own_id(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    delete_customer(raw, "acme")
    report = verify(engine)
    assert [(b.kind, b.aggregate, b.key, b.version) for b in report.breaks] == [
        ("deleted", "customer", "acme", 1)]
    assert "every event (version(s) 1..7)" in report.breaks[0].detail


@pytest.fixture
def interleaved(durable_store_url: str) -> Iterator[tuple[LifecycleEngine, Raw]]:
    """Customers a and b, their events interleaved in the log: a1 b1 a2 b2 a3 b3."""
    engine = LifecycleEngine(durable_store_url)
    for c in ("a", "b"):
        engine.register(customer=c, name=c.upper(), segment="smb", source="web", **AT)
    for _ in range(2):
        for c in ("a", "b"):
            engine.check_in(customer=c, **AT)
    raw = Raw(durable_store_url, engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
    yield engine, raw
    raw.conn.close()
    engine.close()


def test_deleted_interleaved_customer_blames_no_other_customer(
    interleaved: tuple[LifecycleEngine, Raw],
) -> None:
    engine, raw = interleaved
    engine.audit.events(limit=1)
    delete_customer(raw, "a")
    report = verify(engine)
    assert [(b.kind, b.key, b.version) for b in report.breaks] == [("deleted", "a", 1)]
    # b's events right after a's removed ones cannot be re-hashed: named, not blamed (b v3
    # follows a's last event, whose digest the head still holds: it is re-hashed)
    assert report.breaks[0].detail.endswith("could not be re-hashed (their predecessor's "
                                            "digest is gone): b v1 at 2, b v2 at 4")


def test_deleted_customer_without_its_read_model_is_reported_at_its_aggregate_id(
    interleaved: tuple[LifecycleEngine, Raw],
) -> None:
    engine, raw = interleaved  # the audit_index was never built: nothing names it
    delete_customer(raw, "a")
    report = verify(engine)
    assert [(b.kind, b.aggregate, b.key) for b in report.breaks] == [
        ("deleted", "unknown", str(customer_id("a")))]


def test_deleted_customer_and_its_head_is_reported_on_the_events_after_it(
    interleaved: tuple[LifecycleEngine, Raw],
) -> None:
    """With its head row gone too, only its data key row is left to name the customer (by
    its aggregate id); the events following its removed ones are reported, saying positions
    before them are empty."""
    engine, raw = interleaved
    delete_customer(raw, "a", head=True)
    report = verify(engine)
    assert [(b.kind, b.key, b.version) for b in report.breaks] == [
        ("deleted", str(customer_id("a")), None),
        ("modified", "b", 1), ("modified", "b", 2), ("modified", "b", 3)]
    assert "data key row of an aggregate that has no event" in report.breaks[0].detail
    assert all("were removed with their digests" in b.detail for b in report.breaks[1:])


# ------------------------------------------------------------------ the tail, with an anchor


def test_truncated_tail_with_heads_rolled_back(story: tuple[LifecycleEngine, Raw]) -> None:
    """Not detectable without an anchor (a consistent prefix); caught with one."""
    engine, raw = story
    anchor = anchored(engine)
    end = last_position(raw)
    truncate_tail(raw, end - 2)
    assert verify(engine).clean  # the limit: the shorter log is a consistent chain
    report = verify(engine, anchor=anchor)
    assert log_breaks(report) == [("truncated", end)]
    assert f"the chain ends at position {end - 2}, before the anchor" in report.breaks[0].detail


def test_truncated_tail_that_removes_a_customer_leaves_its_key_row_to_tell(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    """The tail held every event of a customer: its data key row, left behind, says so."""
    engine, raw = story
    end = last_position(raw)
    truncate_tail(raw, end - 2, keys=False)
    report = verify(engine)
    assert [b.kind for b in report.breaks] == ["deleted"]
    assert "data key row of an aggregate that has no event" in report.breaks[0].detail


def test_truncated_tail_then_new_events_is_caught_by_the_anchor(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    engine, raw = story
    anchor = anchored(engine)
    end = last_position(raw)
    truncate_tail(raw, end - 2)
    engine = reopen(engine)
    for _ in range(3):
        engine.check_in(customer="acme", **AT)
    assert verify(engine).clean
    # SQLite reuses the freed positions (another digest there), PostgreSQL does not (none)
    assert log_breaks(verify(engine, anchor=anchor)) in ([("modified", end)],
                                                         [("deleted", end)])
    engine.close()


def test_empty_log_after_an_anchor(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    anchor = anchored(engine)
    end = last_position(raw)
    truncate_tail(raw, 0)
    report = verify(engine)
    assert report.clean and report.events == 0 and report.head is None  # the limit
    report = verify(engine, anchor=anchor)
    assert log_breaks(report) == [("truncated", end)]
    assert "the log is empty" in report.breaks[0].detail


def test_log_head_older_than_the_anchor(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    anchor = anchored(engine)
    end = last_position(raw)
    (d,) = raw.run("SELECT digest FROM event_digests WHERE notification_id = ?", end - 3)[0]
    raw.run("UPDATE chain_heads SET notification_id = ?, digest = ? WHERE scope = ?",
            end - 3, d, LOG_SCOPE)
    assert ("forged", end) in log_breaks(verify(engine))  # events chained past the head
    report = verify(engine, anchor=anchor)
    assert ("truncated", end - 3) in log_breaks(report)
    assert any("older than the anchor" in b.detail for b in report.breaks)


def test_anchor_without_settings_part_still_checks_the_log(
    story: tuple[LifecycleEngine, Raw],
) -> None:
    """Anchors printed before the settings were chained (``POSITION:DIGEST``) still work."""
    engine, raw = story
    head = verify(engine).head
    assert head is not None
    assert verify(engine, anchor=head.anchor()).clean
    truncate_tail(raw, head.position - 1)
    assert log_breaks(verify(engine, anchor=head.anchor())) == [("truncated", head.position)]


# ------------------------------------------------------------------ events


def test_event_inserted_before_the_first(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    cond, params = raw.where("acme", 7)
    raw.run(f"INSERT INTO {raw.events} ({raw.nid}, originator_id, originator_version, topic, "
            f"state) SELECT 0, originator_id, 8, topic, state FROM {raw.events} WHERE {cond}",
            *params)
    assert kinds(verify(engine).breaks) == {("forged", "acme", 8)}


def test_events_moved_to_each_others_positions(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    for old, new in ((4, -4), (5, 4), (-4, 5)):
        raw.run(f"UPDATE {raw.events} SET {raw.nid} = ? WHERE {raw.nid} = ?", new, old)
    assert kinds(verify(engine).breaks) == {("swapped", "acme", 5), ("swapped", "acme", 4)}


def test_event_renumbered_is_reordered(story: tuple[LifecycleEngine, Raw]) -> None:
    engine, raw = story
    cond, params = raw.where("acme", 7)
    raw.run(f"UPDATE {raw.events} SET originator_version = 9 WHERE {cond}", *params)
    assert kinds(verify(engine).breaks) == {("reordered", "acme", 9)}


# ------------------------------------------------------------------ the CLI


def test_cli_prints_and_checks_the_settings_anchor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    story: tuple[LifecycleEngine, Raw], durable_store_url: str,
) -> None:
    _, raw = story
    url = durable_store_url
    code, out, err = cli(capsys, monkeypatch, url, "audit", "verify", "--print-heads")
    assert code == 0 and "1 settings change: clean" in err and len(out.splitlines()) == 1
    anchor = out.strip()
    assert ",settings=1:" in anchor
    code, out, _ = cli(capsys, monkeypatch, url, "audit", "verify", "--anchor", anchor,
                       "--json")
    data = orjson.loads(out)
    assert code == 0 and data["clean"] and data["head"] == anchor
    assert [c["key"] for c in data["settings"]] == ["stage_model"]
    raw.run("UPDATE lifecycle_settings SET value = ? WHERE key = 'stage_model'",
            CUSTOMER_SUCCESS.model_dump_json())
    code, out, _ = cli(capsys, monkeypatch, url, "audit", "verify", "--csv")
    assert code == 1 and out.splitlines()[1].startswith("modified,settings,stage_model,1,")
    code, _, err = cli(capsys, monkeypatch, url, "audit", "verify", "--anchor",
                       anchor.replace("settings=", "setings="))
    assert code == 2 and "anchor=" in err and len(err.strip().splitlines()) == 1
