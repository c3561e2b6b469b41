"""Alerts reach real receivers on 127.0.0.1 once per key, whatever the receiver does (item 4
of issue 27): every test asserts the exact set of keys received. SQLite and PostgreSQL.

"The receiver down for a minute" is scaled to about a second (the sender's back-off and
timeouts are test settings: ``notify_helpers.FAST``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from notify_helpers import (  # noqa: F401 (receiver_fixture: a fixture)
    SECRET,
    SECRET_ENV,
    Receiver,
    SmtpSink,
    config,
    drain,
    hook,
    receiver_fixture,
    register,
)

from lifecycle_es import LifecycleEngine


@pytest.fixture
def eng(durable_store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LifecycleEngine]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    e = LifecycleEngine(durable_store_url)
    yield e
    e.close()


def _opened(customer: str, at: datetime) -> str:
    return f"cs-alerts/unowned:{customer}:{at.astimezone(UTC):%Y%m%dT%H%M%SZ}:opened"


def test_an_opened_gap_reaches_the_webhook_signed_once_and_history_does_not(
        eng: LifecycleEngine, receiver: Receiver) -> None:
    register(eng, "before")  # open when the notifier first starts: history
    notifier = eng.notifier(config(hook(receiver)))
    notifier.tick()
    at = datetime.now(UTC)
    register(eng, "acme", at, name="Acme <!channel> & co")
    drain(notifier.tick, lambda: receiver.delivered)
    for _ in range(3):
        notifier.tick()
    assert receiver.received() == {_opened("acme", at)}
    assert len(receiver.requests) == 1
    key, headers, body = receiver.requests[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Lifecycle-Signature"] == expected
    payload = json.loads(body)
    assert payload["id"] == key and payload["alert"] == "opened"
    assert payload["gap"]["customer_name"] == "Acme <!channel> & co"
    assert "&lt;!channel&gt; &amp; co" in payload["text"] and "<!channel>" not in payload["text"]
    assert notifier.status().sent == 1 and notifier.status().pending == 0


@pytest.mark.parametrize("failures", [[500, 503], ["hang"], ["close", "close"], [429]])
def test_a_failing_receiver_gets_the_alert_again_with_the_same_key(
        eng: LifecycleEngine, receiver: Receiver, failures: list[int | str]) -> None:
    notifier = eng.notifier(config(hook(receiver)))
    notifier.tick()
    receiver.hang_seconds = 1.5  # past the 0.5 s timeout
    receiver.plan = list(failures)
    at = datetime.now(UTC)
    register(eng, "acme", at)
    drain(notifier.tick, lambda: receiver.delivered)
    assert receiver.received() == {_opened("acme", at)}
    assert [k for k, _, _ in receiver.requests] == [_opened("acme", at)] * (len(failures) + 1)
    assert notifier.status().sent == 1


def test_the_receiver_down_then_back_loses_nothing(eng: LifecycleEngine,
                                                   receiver: Receiver) -> None:
    notifier = eng.notifier(config(hook(receiver)))
    notifier.tick()
    receiver.stop()
    times = {}
    for name in ("a1", "a2", "a3"):
        times[name] = datetime.now(UTC)
        register(eng, name, times[name])
        time.sleep(0.01)
    end = time.monotonic() + 1.2  # "a minute", scaled
    while time.monotonic() < end:
        notifier.tick()
        time.sleep(0.05)
    assert notifier.status().pending == 3 and not receiver.requests
    receiver.start()
    drain(notifier.tick, lambda: len(receiver.received()) == 3)
    assert receiver.received() == {_opened(n, t) for n, t in times.items()}
    assert len(receiver.delivered) == 3


def test_a_4xx_answer_is_dead_at_once_and_retry_sends_it(eng: LifecycleEngine,
                                                         receiver: Receiver) -> None:
    notifier = eng.notifier(config(hook(receiver)))
    notifier.tick()
    receiver.plan = [404]
    at = datetime.now(UTC)
    register(eng, "acme", at)
    drain(notifier.tick, lambda: notifier.status().dead == 1)
    dead = notifier.alerts("dead")
    assert [a.id for a in dead] == [_opened("acme", at)]
    assert "answered 404" in (dead[0].last_error or "")
    assert not receiver.delivered
    assert notifier.retry(_opened("acme", at)) == 1
    drain(notifier.tick, lambda: receiver.delivered)
    assert receiver.received() == {_opened("acme", at)}


def test_retries_stop_after_the_retry_time_and_the_alert_is_parked_dead(
        eng: LifecycleEngine, receiver: Receiver) -> None:
    notifier = eng.notifier(config(hook(receiver), sender={"retry_for_hours": 0.0003}))
    notifier.tick()  # about a second of retries
    receiver.plan = [500] * 1000
    register(eng, "acme")
    drain(notifier.tick, lambda: notifier.status().dead == 1)
    assert "answered 500" in (notifier.alerts("dead")[0].last_error or "")
    assert len(receiver.requests) >= 2 and not receiver.delivered
    receiver.plan = []
    assert notifier.retry() == 1
    drain(notifier.tick, lambda: receiver.delivered)
    assert notifier.status().dead == 0 and notifier.status().sent == 1


def test_a_restarted_sender_and_a_full_rebuild_send_nothing_again(
        eng: LifecycleEngine, receiver: Receiver) -> None:
    cfg = config(hook(receiver))
    notifier = eng.notifier(cfg)
    notifier.tick()
    at = datetime.now(UTC)
    register(eng, "acme", at)
    drain(notifier.tick, lambda: receiver.delivered)
    eng.projections.rebuild()
    again = eng.notifier(cfg)  # a restarted sender on the rebuilt read models
    for _ in range(5):
        again.tick()
    reopened = LifecycleEngine(eng.store, create=False)
    try:
        for _ in range(3):
            reopened.notifier(cfg).tick()
    finally:
        reopened.close()
    assert [k for k, _, _ in receiver.requests] == [_opened("acme", at)]


def test_an_old_log_imported_into_a_new_store_alerts_nothing(
        store_url_factory: object, tmp_path: Path, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    lines = [json.dumps({"type": "customer_registered", "customer": f"c{i}",
                         "at": f"2024-01-0{i + 1}T09:00:00Z", "actor": "mia",
                         "team": "marketing", "name": f"C{i}", "segment": "smb",
                         "source": "web"}) for i in range(3)]
    for kind in ("sqlite", "postgres"):
        e = LifecycleEngine(store_url_factory(kind))  # type: ignore[operator]
        try:
            notifier = e.notifier(config(hook(receiver)))
            notifier.tick()  # started before the import: the import's gaps are history
            e.import_lines(lines)
            for _ in range(3):
                notifier.tick()
            assert notifier.status().pending == notifier.status().sent == 0
        finally:
            e.close()
    assert not receiver.requests


def test_an_erased_customers_queued_alert_leaves_without_personal_data(
        eng: LifecycleEngine, receiver: Receiver) -> None:
    notifier = eng.notifier(config(hook(receiver)))
    notifier.tick()
    receiver.stop()
    at = datetime.now(UTC)
    register(eng, "acme", at, name="Jane Secret-Name")
    notifier.tick()  # queued while the receiver is down
    assert notifier.status().pending == 1
    eng.erase(customer="acme", reason="GDPR art. 17")
    receiver.start()
    drain(notifier.tick, lambda: receiver.delivered)
    assert receiver.received() == {_opened("acme", at)}
    body = receiver.requests[-1][2].decode()
    assert "Secret-Name" not in body and "Jane" not in body
    assert json.loads(body)["gap"]["customer_name"] == "[erased]"


def test_a_gap_that_opens_with_time_alone_is_alerted_on_the_clock(
        eng: LifecycleEngine, receiver: Receiver) -> None:
    now = [datetime.now(UTC)]
    notifier = eng.notifier(config(hook(receiver, kinds=["handover_stale"])))
    notifier.clock = lambda: now[0]
    who = {"actor": "sam", "team": "sales"}
    register(eng, "acme")
    eng.send_handover(customer="acme", handover_id="h-1", from_team="sales",
                      to_team="success", document={"goals": ["live"]}, at=now[0], **who)
    notifier.tick()  # baseline: the handover is pending, not stale
    now[0] += timedelta(days=2, seconds=1)  # past the 2-day SLA, no new event
    time.sleep(0.25)  # the clock's re-evaluation (clock_seconds 0.2)
    drain(notifier.tick, lambda: receiver.delivered)
    assert receiver.received() == {"cs-alerts/handover_stale:acme:h-1:opened"}


def test_an_escalation_goes_to_the_lead_and_the_opening_to_the_owner(
        eng: LifecycleEngine, tmp_path: Path) -> None:
    sink = SmtpSink(tmp_path)
    try:
        now = [datetime.now(UTC)]
        cfg = config({"name": "owners", "email": "owner", "kinds": ["handover_stale"]},
                     smtp={"host": "127.0.0.1", "port": sink.port, "from": "alerts@lc.test",
                           "ca_file": str(sink.cert)},
                     people={"sue": "sue@lc.test", "lead": "lead@lc.test"},
                     escalation=[{"after_days": 3, "lead": "lead"}])
        notifier = eng.notifier(cfg)
        notifier.clock = lambda: now[0]
        notifier.tick()
        register(eng, "acme")
        eng.send_handover(customer="acme", handover_id="h-1", from_team="sales",
                          to_team="success", to_person="sue", document={"goals": ["live"]},
                          at=now[0], actor="sam", team="sales")
        now[0] += timedelta(days=2, seconds=1)
        drain(notifier.tick, lambda: len(sink.messages) == 1)
        now[0] += timedelta(days=3)
        drain(notifier.tick, lambda: len(sink.messages) == 2)
        gap = "handover_stale:acme:h-1"
        assert sink.message_ids() == {f"owners/{gap}:opened", f"owners/{gap}:escalated:3"}
        to = {str(m["Message-ID"]): m["X-Envelope-To"] for m in sink.messages}
        assert sorted(to.values()) == ["lead@lc.test", "sue@lc.test"]
        assert "Escalated to lead" in str(sink.messages[1]["Subject"])
    finally:
        sink.stop()


def test_email_over_starttls_refused_then_accepted_and_550_is_dead(
        eng: LifecycleEngine, tmp_path: Path) -> None:
    sink = SmtpSink(tmp_path)
    try:
        cfg = config({"name": "team", "email": ["cs@lc.test"]},
                     smtp={"host": "127.0.0.1", "port": sink.port, "from": "alerts@lc.test",
                           "ca_file": str(sink.cert)})
        notifier = eng.notifier(cfg)
        notifier.tick()
        sink.refuse = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
        a = datetime.now(UTC)
        register(eng, "acme", a)
        drain(notifier.tick, lambda: len(sink.messages) == 1)
        sink.refuse = ["550 5.7.1 refused"]
        b = a + timedelta(seconds=1)
        register(eng, "beta", b)
        drain(notifier.tick, lambda: notifier.status().dead == 1)
        opened = {f"team/unowned:{c}:{t:%Y%m%dT%H%M%SZ}:opened" for c, t in (("acme", a),)}
        assert sink.message_ids() == opened
        assert "550" in (notifier.alerts("dead")[0].last_error or "")
        notifier.retry()
        drain(notifier.tick, lambda: len(sink.messages) == 2)
        assert len(sink.message_ids()) == 2
    finally:
        sink.stop()


def test_a_daily_digest_per_person(eng: LifecycleEngine, tmp_path: Path) -> None:
    sink = SmtpSink(tmp_path)
    try:
        start = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
        now = [start]
        cfg = config({"name": "digest", "email": "owner", "digest": "daily", "digest_hour": 8},
                     smtp={"host": "127.0.0.1", "port": sink.port, "from": "alerts@lc.test",
                           "ca_file": str(sink.cert)},
                     people={"sue": "sue@lc.test"})
        notifier = eng.notifier(cfg)
        notifier.clock = lambda: now[0]
        notifier.tick()
        for c in ("acme", "beta"):
            register(eng, c, start - timedelta(days=1))
            eng.assign_owner(customer=c, owner="sue", at=start - timedelta(days=1),
                             actor="sam", team="sales")
        eng.send_handover(customer="acme", handover_id="h-1", from_team="sales",
                          to_team="success", to_person="sue", document={"goals": ["x"]},
                          at=start - timedelta(days=5), actor="sam", team="sales")
        now[0] = start + timedelta(hours=2, seconds=1)
        drain(notifier.tick, lambda: len(sink.messages) == 1)
        for _ in range(3):
            notifier.tick()
        day = now[0].date().isoformat()
        assert sink.message_ids() == {f"digest/digest:sue:{day}"}
        assert sink.messages[0]["X-Envelope-To"] == "sue@lc.test"
        assert "acme" in sink.messages[0].get_payload()
    finally:
        sink.stop()


def test_a_failing_evaluation_holds_back_no_queued_alert(
        eng: LifecycleEngine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle_es.errors import StoreError
    from lifecycle_es.notifying import sender

    notifier = eng.notifier(config(hook(receiver)))
    notifier.tick()
    receiver.stop()
    at = datetime.now(UTC)
    register(eng, "acme", at)
    notifier.tick()  # queued while the receiver is down

    def broken(*args: object, **kwargs: object) -> None:
        raise StoreError("read models unavailable")

    monkeypatch.setattr(sender, "find_gaps", broken)
    register(eng, "beta")  # the log moved: every tick's evaluation now fails
    receiver.start()
    drain(notifier.tick, lambda: receiver.delivered)
    assert receiver.received() == {_opened("acme", at)}
    monkeypatch.undo()
    monkeypatch.setenv(SECRET_ENV, SECRET)
    drain(notifier.tick, lambda: len(receiver.delivered) == 2)  # evaluated again: beta


@pytest.mark.parametrize("password", ["right-password", "wrong-password"])
def test_email_signs_in_with_credentials_from_the_environment(
        eng: LifecycleEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        password: str) -> None:
    sink = SmtpSink(tmp_path, login=("alerts", "right-password"))
    monkeypatch.setenv("SMTP_USER", "alerts")
    monkeypatch.setenv("SMTP_PASSWORD", password)
    try:
        cfg = config({"name": "team", "email": ["cs@lc.test"]},
                     smtp={"host": "127.0.0.1", "port": sink.port, "from": "alerts@lc.test",
                           "ca_file": str(sink.cert), "username_env": "SMTP_USER",
                           "password_env": "SMTP_PASSWORD"})
        notifier = eng.notifier(cfg)
        notifier.tick()
        at = datetime.now(UTC)
        register(eng, "acme", at)
        if password == "right-password":
            drain(notifier.tick, lambda: sink.messages)
            assert sink.message_ids() == {f"team/unowned:acme:{at:%Y%m%dT%H%M%SZ}:opened"}
        else:  # refused: dead at once (535), the password in no error
            drain(notifier.tick, lambda: notifier.status().dead == 1)
            error = notifier.alerts("dead")[0].last_error or ""
            assert "535" in error and password not in error and not sink.messages
    finally:
        sink.stop()
