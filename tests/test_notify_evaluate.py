"""Which alerts open gaps call for (``notifying.evaluate.decide``) and what they say
(``notifying.render``): pure functions over hand-made gaps, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_string
from urllib.parse import unquote

import pytest
from notify_helpers import config

from lifecycle_es.notifying.deliver_email import message_id
from lifecycle_es.notifying.delivery import header_id
from lifecycle_es.notifying.evaluate import decide
from lifecycle_es.notifying.outbox import Baseline
from lifecycle_es.notifying.render import email_text, payload
from lifecycle_es.reading.lifecycle_checks.gaps import Gap

START = datetime(2026, 12, 1, 12, tzinfo=UTC)
BASE = Baseline(START, 10)


def gap(customer: str, since: datetime, kind: str = "unowned", team: str = "success",
        owner: str | None = "sue") -> Gap:
    return Gap(customer, kind, since, team, owner, "onboarding", "no owner", None)


def ids(cfg: object, now: datetime, gaps: list[Gap]) -> set[str]:
    return {a.id for a in decide(cfg, BASE, now, gaps)}  # type: ignore[arg-type]


HOOK = {"name": "hook", "webhook": "http://127.0.0.1:9/h", "secret_env": "S"}


def test_only_gaps_opened_after_the_first_start_are_alerted() -> None:
    old, new = gap("old", START - timedelta(seconds=1)), gap("new", START + timedelta(hours=1))
    at_start = gap("edge", START)
    now = START + timedelta(hours=2)
    assert ids(config(HOOK), now, [old, new, at_start]) == {f"hook/{new.id}:opened"}


def test_escalations_come_when_due_once_per_days_and_never_for_history() -> None:
    cfg = config(HOOK, escalation=[{"after_days": 2, "lead": "carol", "teams": ["success"]},
                                   {"after_days": 2, "lead": "dave"},
                                   {"after_days": 5, "lead": "erin"}])
    g = gap("acme", START - timedelta(days=1))  # history: its opening is not alerted
    assert ids(cfg, START + timedelta(hours=23), [g]) == set()
    now = START + timedelta(days=1, seconds=1)
    alerts = decide(cfg, BASE, now, [g])
    assert [(a.id, a.subject["escalation"]["lead"]) for a in alerts] == [
        (f"hook/{g.id}:escalated:2", "carol")]
    assert ids(cfg, START + timedelta(days=4, seconds=1), [g]) == {
        f"hook/{g.id}:escalated:2", f"hook/{g.id}:escalated:5"}
    older = gap("older", START - timedelta(days=3))  # its 2-day escalation was history too
    assert ids(cfg, START + timedelta(hours=1), [older]) == set()


def test_filters_alert_types_and_owner_channels() -> None:
    cfg = config(HOOK | {"kinds": ["stalled"]},
                 {"name": "owners", "email": "owner", "teams": ["sales"]},
                 {"name": "esc", "email": ["lead@x.test"], "alerts": ["escalated"]},
                 smtp={"host": "127.0.0.1", "from": "a@x.test"}, people={"carol": "c@x.test"},
                 escalation=[{"after_days": 1, "lead": "carol"}])
    now = START + timedelta(hours=1)
    sales = gap("s", START + timedelta(minutes=1), team="sales")
    nobody = gap("n", START + timedelta(minutes=1), team="sales", owner=None)
    stalled = gap("t", START + timedelta(minutes=1), kind="stalled")
    alerts = decide(cfg, BASE, now, [sales, nobody, stalled])
    assert {(a.id, a.recipient) for a in alerts} == {
        (f"owners/{sales.id}:opened", "sue"), (f"hook/{stalled.id}:opened", None)}
    later = decide(cfg, BASE, START + timedelta(days=1, minutes=2), [sales])
    assert {(a.id, a.recipient) for a in later} >= {
        (f"owners/{sales.id}:escalated:1", "carol"), (f"esc/{sales.id}:escalated:1", None)}


def test_a_daily_digest_per_owner_from_its_hour_on() -> None:
    cfg = config({"name": "d", "email": "owner", "digest": "daily", "digest_hour": 13},
                 smtp={"host": "127.0.0.1", "from": "a@x.test"})
    gaps = [gap("a", START - timedelta(days=9)), gap("b", START, owner="bo"),
            gap("c", START, owner=None)]
    assert ids(cfg, START + timedelta(minutes=59), gaps) == set()
    assert ids(cfg, START + timedelta(hours=1), gaps) == {"d/digest:bo:2026-12-01",
                                                          "d/digest:sue:2026-12-01"}
    early = Baseline(START + timedelta(hours=2), 0)  # started after today's hour
    assert decide(cfg, early, START + timedelta(hours=3), gaps) == []


@pytest.mark.parametrize("name", ["Evil\r\nBcc: x@evil.test", "<!channel> & <@U1>",
                                  "x" * 10_000, "é\u202etxt"])
def test_what_an_alert_says_stays_inert(name: str) -> None:
    g = gap("acme", START + timedelta(minutes=1))
    alert = decide(config(HOOK), BASE, START + timedelta(hours=1), [g])[0]
    body = payload(alert, {"acme": name}, START + timedelta(hours=1))
    assert body["gap"]["customer_name"] == name
    assert "<!" not in body["text"] and "\r" not in body["text"]
    subject, text = email_text(body)
    assert "\n" not in subject and "\r" not in subject
    assert "Bcc" not in message_from_string(f"Subject: {subject}\n\n{text}").keys()[1:]


@pytest.mark.parametrize("alert_id", ["hook/unowned:acme:20261201T120000Z:opened",
                                      "hook/unowned:Café Zürich:20261201T120000Z:opened",
                                      "h/unowned:a b<c>:x:opened"])
def test_the_alert_id_survives_headers(alert_id: str) -> None:
    assert header_id(alert_id).isascii() and unquote(header_id(alert_id)) == alert_id
    mid = message_id(alert_id)
    assert mid.isascii() and " " not in mid
    assert unquote(mid.strip("<>").rpartition("@")[0]) == alert_id


def test_the_smallest_configuration_of_the_issue(tmp_path: object,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from lifecycle_es.engine import load_notifications

    path = Path(str(tmp_path)) / "n.toml"
    path.write_text('''[[channel]]
name = "cs-alerts"
webhook = "http://127.0.0.1:9000/hook"
secret_env = "CS_ALERTS_SECRET"        # HMAC key, read from this environment variable
# kinds = ["handover_stale"]           # default: every gap kind
''')
    monkeypatch.setenv("CS_ALERTS_SECRET", "k")
    monkeypatch.setenv("LIFECYCLE_ES_NOTIFICATIONS", str(path))
    cfg = load_notifications()
    assert cfg is not None and cfg.channel[0].kinds is None
    assert cfg.channel[0].alerts == ["opened", "escalated"] and cfg.sender.retry_for_hours == 24
