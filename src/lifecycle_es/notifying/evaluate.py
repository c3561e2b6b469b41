"""Which alerts the open gaps call for now: gaps that opened, gaps due for escalation, the
daily digests — only those whose moment is after the notifier's first start."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

from lifecycle_es.notifying.config import Channel, Escalation, Notifications
from lifecycle_es.notifying.outbox import Alert, Baseline
from lifecycle_es.reading.lifecycle_checks.gaps import Gap


def gap_subject(gap: Gap) -> dict[str, Any]:
    """The gap's facts an alert keeps (none of them personal: the customer's name is read
    when the alert is delivered, so an erased customer's reads ``[erased]``)."""
    return {"id": gap.id, "kind": gap.kind, "customer": gap.customer,
            "since": gap.since.astimezone(UTC).isoformat(), "team": gap.team,
            "owner": gap.owner, "stage": gap.stage, "detail": gap.detail, "ref": gap.ref}


def decide(config: Notifications, baseline: Baseline, now: datetime,
           gaps: Sequence[Gap]) -> list[Alert]:
    """The alerts ``gaps`` (the gaps open at ``now``) call for: each with a moment (the gap's
    ``since``, ``since`` + an escalation's days, a digest's hour) after the baseline's start
    and not after ``now``. Deciding again gives the same ids (the outbox keeps the first)."""
    alerts: list[Alert] = []
    for channel in config.channel:
        if channel.digest is not None:
            alerts.extend(_digests(channel, baseline, now, gaps))
            continue
        for gap in gaps:
            if channel.covers(gap.kind, gap.team):
                alerts.extend(_gap_alerts(channel, config.escalation, baseline, now, gap))
    return alerts


def _gap_alerts(channel: Channel, rules: Sequence[Escalation], baseline: Baseline,
                now: datetime, gap: Gap) -> Iterator[Alert]:
    after = baseline.started_at
    if "opened" in channel.alerts and after < gap.since <= now and \
            (gap.owner is not None or not channel.to_owner):
        yield _alert(channel, f"{gap.id}:opened", "opened", gap, gap.owner, now,
                     gap_subject(gap))
    if "escalated" not in channel.alerts:
        return
    seen: set[int] = set()  # the first rule covering a gap for a number of days wins
    for rule in rules:
        if rule.after_days in seen or not rule.covers(gap.kind, gap.team):
            continue
        seen.add(rule.after_days)
        moment = gap.since + timedelta(days=rule.after_days)
        if after < moment <= now:
            subject = {**gap_subject(gap), "escalation": {"after_days": rule.after_days,
                                                           "lead": rule.lead}}
            yield _alert(channel, f"{gap.id}:escalated:{rule.after_days}", "escalated", gap,
                         rule.lead, now, subject)


def _alert(channel: Channel, alert_id: str, alert: str, gap: Gap, person: str | None,
           now: datetime, subject: dict[str, Any]) -> Alert:
    return Alert(f"{channel.name}/{alert_id}", channel.name, alert, gap.id, gap.customer,
                 person if channel.to_owner else None, subject, now)


def digest_moment(channel: Channel, now: datetime) -> datetime:
    """Today's (UTC) digest time of ``channel``."""
    return datetime.combine(now.astimezone(UTC).date(), time(channel.digest_hour), UTC)


def _digests(channel: Channel, baseline: Baseline, now: datetime,
             gaps: Sequence[Gap]) -> Iterator[Alert]:
    moment = digest_moment(channel, now)
    if not baseline.started_at < moment <= now:
        return
    day = moment.date().isoformat()
    owners = sorted({g.owner for g in gaps if g.owner and channel.covers(g.kind, g.team)})
    for person in owners:
        yield Alert(f"{channel.name}/digest:{person}:{day}", channel.name, "digest", None,
                    None, person, {"person": person, "date": day}, now)
