"""What an alert says, rendered when it is delivered from the reads of that moment: the JSON
payload of a webhook (with a Slack-compatible ``text``) and an e-mail's subject and body."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from lifecycle_es.notifying.outbox import Alert, stamp

#: the payload's schema version (docs/notifications.md, "Payload")
SCHEMA = 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def slack_escaped(text: str) -> str:
    """``text`` inert in Slack's mrkdwn: ``&``, ``<`` and ``>`` escaped (no ``<!channel>``,
    no link markup from a customer's name)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def one_line(text: str) -> str:
    """``text`` with control characters (line breaks too) as spaces: safe in a header."""
    return _CONTROL.sub(" ", text)


def gap_view(subject: Mapping[str, Any], names: Mapping[str, str | None],
             now: datetime) -> dict[str, Any]:
    """A gap as the payload shows it: its facts, the customer's name as stored now, how
    many days it has been open."""
    since = datetime.fromisoformat(subject["since"])
    keys = ("id", "kind", "customer", "team", "owner", "stage", "detail", "ref")
    return {**{k: subject.get(k) for k in keys}, "customer_name": names.get(subject["customer"]),
            "since": since.astimezone(UTC).isoformat(),
            "days_open": round((now - since).total_seconds() / 86400, 2)}


def _gap_line(gap: Mapping[str, Any]) -> str:
    name = gap["customer_name"] or gap["customer"]
    owner = gap["owner"] or "nobody"
    return (f"{gap['kind']}: {name} ({gap['customer']}), team {gap['team']}, owner {owner}: "
            f"{gap['detail']} (open {gap['days_open']:g} days)")


def payload(alert: Alert, names: Mapping[str, str | None], now: datetime,
            digest: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The webhook's JSON body (e-mails say the same in words)."""
    body: dict[str, Any] = {"schema": SCHEMA, "id": alert.id, "alert": alert.alert,
                            "channel": alert.channel, "queued_at": stamp(alert.created_at),
                            "sent_at": stamp(now), "attempt": alert.attempts}
    if alert.alert == "digest":
        gaps = [gap_view(g, names, now) for g in digest]
        body["digest"] = {"person": alert.subject["person"], "date": alert.subject["date"],
                          "gaps": gaps}
    else:
        body["gap"] = gap_view(alert.subject, names, now)
        body["escalation"] = alert.subject.get("escalation")
    body["text"] = text(body)
    return body


def headline(body: Mapping[str, Any]) -> str:
    """One line: what happened (an e-mail's subject; the first line of ``text``)."""
    if body["alert"] == "digest":
        d = body["digest"]
        return f"Open gaps of {d['person']} on {d['date']}: {len(d['gaps'])}"
    gap = body["gap"]
    name = gap["customer_name"] or gap["customer"]
    if body["alert"] == "escalated":
        esc = body["escalation"]
        return (f"Escalated to {esc['lead']}: {gap['kind']} of {name} open "
                f"{esc['after_days']} days")
    return f"Gap opened: {gap['kind']} of {name}"


def text(body: Mapping[str, Any]) -> str:
    """The message in words, inert in Slack's mrkdwn."""
    gaps = body["digest"]["gaps"] if body["alert"] == "digest" else [body["gap"]]
    lines = [headline(body), *(f"- {_gap_line(g)}" for g in gaps)]
    return slack_escaped("\n".join(one_line(line) for line in lines))


def email_text(body: Mapping[str, Any]) -> tuple[str, str]:
    """An e-mail's subject and plain-text body."""
    gaps = body["digest"]["gaps"] if body["alert"] == "digest" else [body["gap"]]
    lines = [headline(body), ""]
    for g in gaps:
        lines += [f"- {_gap_line(g)}", f"  since {g['since']}, gap id {g['id']}"]
    lines += ["", f"Alert id: {body['id']}"]
    return f"[lifecycle-es] {one_line(headline(body))}", "\n".join(one_line(x) for x in lines)
