"""The notifier: evaluates the open gaps into the outbox and delivers what is due.

Each tick: when the log moved (or every ``clock_seconds``, for gaps that open with time
alone) the read models catch up, the open gaps are read and the alerts they call for are
added to the outbox in one transaction; then the due alerts are claimed (leased), delivered
and marked sent, retried later or parked as dead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle_es.backoff import Backoff
from lifecycle_es.config import Config
from lifecycle_es.errors import ConfigError, LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.notifying import deliver_email, deliver_webhook, evaluate, render
from lifecycle_es.notifying.config import ENV_VAR, Channel, Notifications, Sender, secret
from lifecycle_es.notifying.delivery import DeliveryFailed
from lifecycle_es.notifying.outbox import Alert, Baseline, Outbox, OutboxStatus
from lifecycle_es.reading.lifecycle_checks.gaps import find_gaps
from lifecycle_es.reading.source import Source
from lifecycle_es.stores.url import redact

log = get_logger("lifecycle_es.notify")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Tick:
    """What one tick did: alerts queued, delivered, failed (to retry), parked as dead."""

    queued: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0


class Notifier:
    """Alerts of one store's gaps to the channels of ``config``."""

    def __init__(self, source: Source, config: Notifications | None, *,
                 gaps_config: Config | None = None,
                 clock: Callable[[], datetime] = _now) -> None:
        """Without ``config`` the notifier only answers ``status``, ``alerts``, ``retry``."""
        self.source, self._config, self.gaps_config = source, config, gaps_config
        self.clock = clock
        self.outbox = Outbox(source.projections.read)
        self.outbox.ensure()
        if config is not None:
            config.check_teams(source.stage_model.teams)
        s = config.sender if config is not None else Sender()
        self.backoff = Backoff(s.backoff_first_seconds, s.backoff_cap_seconds)
        self._evaluated: tuple[int, float] | None = None  # (head, monotonic time)

    @property
    def config(self) -> Notifications:
        if self._config is None:
            raise ConfigError(f"no notifications file: give --notifications PATH or "
                              f"${ENV_VAR}")
        return self._config

    # ------------------------------------------------------------ deciding

    def baseline(self) -> Baseline:
        """The first start, recorded now if this is it (every gap open now is history)."""
        found = self.outbox.baseline()
        if found is not None:
            return found
        start = self.outbox.start(self.clock(), self.source.event_log.head())
        log.info("notify.baseline", started_at=start.started_at.isoformat(),
                 position=start.position)
        return start

    def evaluate(self) -> int:
        """Catch the read models up, read the open gaps, queue the alerts they call for; the
        number of alerts queued."""
        base = self.baseline()
        pm = self.source.projections
        pm.catch_up()
        now = self.clock()
        gaps = find_gaps(self.source, now, config=self.gaps_config)
        queued = self.outbox.add(evaluate.decide(self.config, base, now, gaps))
        for alert_id in queued:
            log.info("notify.queued", id=alert_id)
        return len(queued)

    def _due_evaluation(self) -> bool:
        head, last = self.source.event_log.head(), self._evaluated
        return last is None or head != last[0] or \
            time.monotonic() - last[1] >= self.config.sender.clock_seconds

    # ------------------------------------------------------------ delivering

    def deliver_due(self) -> Tick:
        """Claim the due alerts and deliver each; what came of them."""
        s = self.config.sender
        now = self.clock()
        claimed = self.outbox.claim(now, timedelta(seconds=s.lease_seconds), s.batch)
        sent = failed = dead = 0
        for alert in claimed:
            outcome = self._deliver(alert)
            sent += outcome == "sent"
            failed += outcome == "failed"
            dead += outcome == "dead"
        return Tick(sent=sent, failed=failed, dead=dead)

    def _deliver(self, alert: Alert) -> str:
        try:
            self._send(alert)
        except DeliveryFailed as exc:
            return self._failed(alert, str(exc), exc.permanent)
        except LifecycleError as exc:  # a secret not set: fix the environment, retry
            return self._failed(alert, str(exc), False)
        self.outbox.sent(alert.id, self.clock())
        log.info("notify.sent", id=alert.id, attempt=alert.attempts)
        return "sent"

    def _failed(self, alert: Alert, error: str, permanent: bool) -> str:
        now = self.clock()
        retry_from = alert.retry_from or alert.created_at
        due = now + timedelta(seconds=self.backoff.pause(alert.attempts))
        give_up = permanent or \
            due - retry_from > timedelta(hours=self.config.sender.retry_for_hours)
        if give_up:
            error = error if permanent else f"{error} (gave up after {alert.attempts} attempts)"
            self.outbox.dead(alert.id, error)
            log.error("notify.dead", id=alert.id, error=error)
            return "dead"
        self.outbox.again(alert.id, due, error)
        log.warning("notify.failed", id=alert.id, attempt=alert.attempts, error=error,
                    retry_in_s=round((due - now).total_seconds(), 1))
        return "failed"

    def _send(self, alert: Alert) -> None:
        channel = self.config.channel_named(alert.channel)
        if channel is None:
            raise DeliveryFailed(f"channel {alert.channel!r} is no longer configured",
                                 permanent=True)
        now = self.clock()
        digest = self._digest(channel, alert, now)
        customers = {g["customer"] for g in digest} | (
            {alert.customer} if alert.customer else set())
        body = render.payload(alert, self._names(customers), now, digest)
        timeout = self.config.sender.timeout_seconds
        if channel.webhook is not None:
            assert channel.secret_env is not None
            data = json.dumps(body, ensure_ascii=False).encode()
            deliver_webhook.post(channel.webhook, alert.id, data, secret(channel.secret_env),
                                 timeout)
            return
        assert self.config.smtp is not None
        subject, text = render.email_text(body)
        deliver_email.send(self.config.smtp, self._recipients(channel, alert), subject, text,
                           alert.id, timeout)

    def _digest(self, channel: Channel, alert: Alert, now: datetime) -> list[dict[str, Any]]:
        """A digest's gaps as they are now (the person's open gaps the channel covers)."""
        if alert.alert != "digest":
            return []
        gaps = find_gaps(self.source, now, config=self.gaps_config,
                         owner=alert.subject["person"])
        return [evaluate.gap_subject(g) for g in gaps if channel.covers(g.kind, g.team)]

    def _names(self, customers: set[str]) -> dict[str, str | None]:
        """The customers' names as stored now (``[erased]`` for an erased one): read for
        each alert just before it is sent (not once for a batch, whose last alert may leave
        minutes later), so an erasure meanwhile is honoured."""
        if not customers:
            return {}
        read = self.source.projections.read
        return dict(read.select_in("current_stage", ["customer", "name"], "customer",
                                   sorted(customers)))

    def _recipients(self, channel: Channel, alert: Alert) -> list[str]:
        if isinstance(channel.email, list):
            return channel.email
        person = alert.recipient or ""
        address = self.config.people.get(person)
        if address is None:
            raise DeliveryFailed(f"no address for {person!r} in [people]", permanent=True)
        return [address]

    # ------------------------------------------------------------ running

    def tick(self) -> Tick:
        """One round: evaluate when due, then deliver what is due (also when the evaluation
        failed: a read model that cannot catch up holds back no alert already queued)."""
        queued = 0
        try:
            if self._due_evaluation():
                head = self.source.event_log.head()
                queued = self.evaluate()
                self._evaluated = (head, time.monotonic())
        except LifecycleError as exc:
            log.error("notify.evaluation_failed", error=str(exc))
            self.source.projections.read.ensure_open()  # a lost connection: a new one
        done = self.deliver_due()
        return Tick(queued, done.sent, done.failed, done.dead)

    def run(self, stop: threading.Event) -> None:
        """Tick every ``poll_seconds`` until ``stop`` is set; a failing tick (the store
        down, a read model failing) is logged and tried again on the next one."""
        log.info("notify.run", channels=[_shown(c) for c in self.config.channel])
        while not stop.is_set():
            try:
                done = self.tick()
            except LifecycleError as exc:
                log.error("notify.tick_failed", error=str(exc))
                done = Tick()
                with suppress(LifecycleError):
                    self.source.projections.read.ensure_open()
            if done.sent + done.failed + done.dead == 0:
                stop.wait(self.config.sender.poll_seconds)

    # ------------------------------------------------------------ operations

    def status(self) -> OutboxStatus:
        return self.outbox.status()

    def outbox_baseline(self) -> Baseline | None:
        """The first start, if a sender ever started on this store (nothing is recorded)."""
        return self.outbox.baseline()

    def alerts(self, status: str | None = None, limit: int = 100) -> list[Alert]:
        return self.outbox.alerts(status, limit)

    def retry(self, alert_id: str | None = None) -> int:
        """Queue dead alerts again: one by id, or every one (None)."""
        return self.outbox.retry(self.clock(), alert_id)


def _shown(channel: Channel) -> str:
    target = redact(channel.webhook) if channel.webhook else \
        ("owner" if channel.email == "owner" else ", ".join(channel.email or []))
    return f"{channel.name} -> {target}"
