"""The outbox: alerts decided and not yet delivered, and the notifier's start (baseline).

Two tables beside the read models (the same SQLite file; the ``<schema>_read`` schema on
PostgreSQL), which are *not* read models: a rebuild never touches them.

- ``notify_state``: the notifier's first start (time and log position): alerts belong to
  moments after it, never to the history before.
- ``notify_outbox``: one row per alert and channel, its id the alert's stable id (the
  ``Idempotency-Key`` / ``Message-ID`` of every attempt), inserted once (a second insert of
  the same id does nothing); status ``pending``, ``sent`` or ``dead``; a claimed row is
  leased (``locked_until``) to one sender.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from lifecycle_es.reading.projection.db import ReadStore

STATE = "notify_state"
OUTBOX = "notify_outbox"
_COLUMNS = ("id", "channel", "alert", "gap_id", "customer", "recipient", "subject",
            "created_at", "retry_from", "due_at", "attempts", "status", "locked_until",
            "locked_by", "last_error", "sent_at")


def stamp(at: datetime) -> str:
    """A UTC instant as the outbox stores it (fixed width: text order is time order)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unstamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Alert:
    """One alert to one channel: ``id`` is its stable id; ``subject`` its non-personal facts
    (the gap as it was decided, or the digest's person and day)."""

    id: str
    channel: str
    alert: str  # opened, escalated or digest
    gap_id: str | None
    customer: str | None
    recipient: str | None  # the person it goes to (owner, lead), None: the channel's target
    subject: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    status: str = "pending"
    last_error: str | None = None
    due_at: datetime | None = None
    sent_at: datetime | None = None
    retry_from: datetime | None = None


@dataclass(frozen=True)
class Baseline:
    """The notifier's first start: nothing before ``started_at`` is alerted."""

    started_at: datetime
    position: int


class OutboxStatus(NamedTuple):
    pending: int
    sent: int
    dead: int
    oldest_pending: datetime | None


class Outbox:
    """The notifier's tables on a read store's connection."""

    def __init__(self, read: ReadStore) -> None:
        self.read = read
        self.owner = uuid.uuid4().hex  # this sender's name on its leases

    def ensure(self) -> None:
        """Create the tables (a no-op when they exist; nothing on a read-only store)."""
        if self.read.store.read_only or self.read.table_exists(OUTBOX):
            return
        self.read.execute(f"CREATE TABLE IF NOT EXISTS {STATE} (key TEXT PRIMARY KEY, "
                          "value TEXT NOT NULL)")
        self.read.execute(
            f"CREATE TABLE IF NOT EXISTS {OUTBOX} (id TEXT PRIMARY KEY, channel TEXT NOT NULL, "
            "alert TEXT NOT NULL, gap_id TEXT, customer TEXT, recipient TEXT, "
            "subject TEXT NOT NULL, created_at TEXT NOT NULL, retry_from TEXT NOT NULL, "
            "due_at TEXT NOT NULL, attempts INTEGER NOT NULL, status TEXT NOT NULL, "
            "locked_until TEXT, locked_by TEXT, last_error TEXT, sent_at TEXT)")
        self.read.execute(f"CREATE INDEX IF NOT EXISTS {OUTBOX}_due ON {OUTBOX} "
                          "(status, due_at)")

    # ------------------------------------------------------------ the baseline

    def baseline(self) -> Baseline | None:
        rows = dict(self.read.fetchall(f"SELECT key, value FROM {STATE}"))
        if "started_at" not in rows:
            return None
        return Baseline(unstamp(rows["started_at"]), int(rows["position"]))

    def start(self, at: datetime, position: int) -> Baseline:
        """Record the first start (kept when another sender recorded one first)."""
        with self.read.transaction():
            for key, value in (("started_at", stamp(at)), ("position", str(position))):
                self.read.execute(f"INSERT INTO {STATE} (key, value) VALUES (?, ?) "
                                  "ON CONFLICT (key) DO NOTHING", (key, value))
        found = self.baseline()
        assert found is not None
        return found

    # ------------------------------------------------------------ adding

    def add(self, alerts: Iterable[Alert]) -> list[str]:
        """Insert the alerts not in the outbox yet, in one transaction; their ids."""
        alerts = self._unknown(list(alerts))  # a read first: no write lock when all known
        if not alerts:
            return []
        with self.read.transaction():
            new = self._unknown(alerts)
            self.read.executemany(
                f"INSERT INTO {OUTBOX} ({', '.join(_COLUMNS)}) VALUES "
                f"({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (id) DO NOTHING",
                [(a.id, a.channel, a.alert, a.gap_id, a.customer, a.recipient,
                  json.dumps(a.subject, sort_keys=True), stamp(a.created_at),
                  stamp(a.created_at), stamp(a.created_at), 0, "pending", None, None, None,
                  None) for a in new])
        return [a.id for a in new]

    def _unknown(self, alerts: list[Alert]) -> list[Alert]:
        """Those of ``alerts`` the outbox does not hold."""
        if not alerts:
            return []
        have = {r[0] for r in self.read.select_in(OUTBOX, ["id"], "id", [a.id for a in alerts])}
        return [a for a in alerts if a.id not in have]

    # ------------------------------------------------------------ sending

    def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Alert]:
        """Lease up to ``limit`` pending alerts that are due to this sender, counting an
        attempt for each (PostgreSQL: rows other senders hold are skipped, not waited
        for; SQLite: one writer at a time)."""
        skip = " FOR UPDATE SKIP LOCKED" if self.read.dialect == "postgresql" else ""
        at = stamp(now)
        with self.read.transaction():
            rows = self.read.fetchall(
                f"UPDATE {OUTBOX} SET locked_until = ?, locked_by = ?, "
                "attempts = attempts + 1 WHERE id IN (SELECT id FROM "
                f"{OUTBOX} WHERE status = 'pending' AND due_at <= ? AND (locked_until IS NULL "
                f"OR locked_until <= ?) ORDER BY due_at LIMIT ?{skip}) "
                f"RETURNING {', '.join(_COLUMNS)}",
                (stamp(now + lease), self.owner, at, at, limit))
        return sorted((_alert(r) for r in rows), key=lambda a: (a.due_at or a.created_at, a.id))

    def sent(self, alert_id: str, now: datetime) -> None:
        self._finish(alert_id, "status = 'sent', sent_at = ?, last_error = NULL", (stamp(now),))

    def again(self, alert_id: str, due: datetime, error: str) -> None:
        """A failed attempt: try again at ``due``."""
        self._finish(alert_id, "due_at = ?, last_error = ?", (stamp(due), error))

    def dead(self, alert_id: str, error: str) -> None:
        """Given up: parked with its last error (``notify retry`` sends it again)."""
        self._finish(alert_id, "status = 'dead', last_error = ?", (error,))

    def _finish(self, alert_id: str, sets: str, params: tuple[Any, ...]) -> None:
        with self.read.transaction():
            self.read.execute(f"UPDATE {OUTBOX} SET {sets}, locked_until = NULL, "
                              "locked_by = NULL WHERE id = ? AND status = 'pending'",
                              (*params, alert_id))

    # ------------------------------------------------------------ operations

    def status(self) -> OutboxStatus:
        counts = dict(self.read.fetchall(f"SELECT status, COUNT(*) FROM {OUTBOX} "
                                         "GROUP BY status"))
        oldest = self.read.fetchone(f"SELECT MIN(created_at) FROM {OUTBOX} "
                                    "WHERE status = 'pending'")
        return OutboxStatus(int(counts.get("pending", 0)), int(counts.get("sent", 0)),
                            int(counts.get("dead", 0)),
                            unstamp(oldest[0]) if oldest and oldest[0] else None)

    def alerts(self, status: str | None = None, limit: int = 100) -> list[Alert]:
        where = "WHERE status = ?" if status else ""
        rows = self.read.fetchall(f"SELECT {', '.join(_COLUMNS)} FROM {OUTBOX} {where} "
                                  "ORDER BY created_at, id LIMIT ?",
                                  (*([status] if status else []), limit))
        return [_alert(r) for r in rows]

    def retry(self, now: datetime, alert_id: str | None = None) -> int:
        """Send dead alerts again (one by id, or all): pending, due now, retried for the
        whole retry time again; the number of alerts queued again."""
        where, params = ("id = ? AND status = 'dead'", (alert_id,)) if alert_id else \
            ("status = 'dead'", ())
        with self.read.transaction():
            cur = self.read.execute(
                f"UPDATE {OUTBOX} SET status = 'pending', due_at = ?, retry_from = ?, "
                f"attempts = 0, locked_until = NULL, locked_by = NULL WHERE {where}",
                (stamp(now), stamp(now), *params))
            return int(cur.rowcount)


def _alert(row: tuple[Any, ...]) -> Alert:
    r = dict(zip(_COLUMNS, row, strict=True))
    return Alert(r["id"], r["channel"], r["alert"], r["gap_id"], r["customer"],
                 r["recipient"], json.loads(r["subject"]), unstamp(r["created_at"]),
                 attempts=int(r["attempts"]), status=r["status"], last_error=r["last_error"],
                 due_at=unstamp(r["due_at"]),
                 sent_at=unstamp(r["sent_at"]) if r["sent_at"] else None,
                 retry_from=unstamp(r["retry_from"]))
