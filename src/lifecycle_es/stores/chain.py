"""The hash chain that makes the event log tamper-evident.

Every stored event gets a SHA-256 digest covering its own bytes (aggregate id, version, topic,
state), the digest of the previous event in the whole log and the digest of the previous event
of the same aggregate. The digests go to ``event_digests`` and the latest digest of the log and
of each aggregate to ``chain_heads``, in the same transaction as the events (see
``stores/recorders.py``). ``lifecycle-es audit verify`` recomputes the chain.

The store-wide settings (the stage model, which decides what is valid) have a chain of their
own: every change through the engine appends a row to ``settings_history`` (the key, the new
value, the log position it was made at, the time, and a digest chained to the previous change)
and moves the ``settings`` head in ``chain_heads``, in the same transaction as the change
(:class:`SettingsLog`). ``audit verify`` checks that chain and that every stored value is the
last one recorded for its key.

A writer who can rewrite the whole chain and its heads can forge it (there is no secret):
anchor the heads outside the database to catch that (docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from hashlib import sha256
from typing import Any
from uuid import UUID

ZERO = bytes(32)
LOG_SCOPE = "log"
DIGESTS_TABLE = "event_digests"
HEADS_TABLE = "chain_heads"
SETTINGS_TABLE = "lifecycle_settings"
SETTINGS_HISTORY_TABLE = "settings_history"
#: the ``chain_heads`` scope of the settings chain (seq in ``notification_id``, version 0)
SETTINGS_SCOPE = "settings"
#: ``settings_history.origin``: set by the engine on a new store, or found on a store made
#: before the settings were chained (recorded as they were when the store was first opened)
SET, ADOPTED = "set", "adopted"


def changed_by(actor: str) -> str:
    """``settings_history.origin`` of an explicit change of a setting (``stage-model set``):
    ``changed by ACTOR`` (covered by the change's digest, like every column)."""
    return f"changed by {actor}"


@lru_cache(maxsize=1 << 17)  # called for every event, on few distinct aggregates
def canonical_id(originator_id: UUID | str) -> str:
    """The aggregate id as hashed: the hyphenated UUID text (SQLite stores it as hex)."""
    return str(originator_id if isinstance(originator_id, UUID) else UUID(originator_id))


def digest(prev_log: bytes, prev_aggregate: bytes, originator_id: UUID | str, version: int,
           topic: str, state: bytes) -> bytes:
    """The digest of one event, chained to the previous event of the log and of its aggregate."""
    h = sha256(prev_log)
    h.update(prev_aggregate)
    h.update(f"{canonical_id(originator_id)}\x00{version}\x00{topic}\x00".encode())
    h.update(state)
    return h.digest()


#: one event as the recorders write it: (canonical aggregate id, version, topic, state)
Row = tuple[str, int, str, bytes]


class Chain:
    """The chain's heads during one write transaction, and the rows' digests.

    A recorder creates one per transaction, tells it the stored log head (:meth:`start`) and
    the stored heads of aggregates it has not seen yet (:meth:`learn`), links every batch of
    rows in notification order (:meth:`link`) and finally stores :meth:`heads` once: the log
    head and the last digest of every aggregate the transaction wrote, not one upsert per batch.
    """

    def __init__(self) -> None:
        self.started = False
        self.fresh = False  # the store had no chain yet: no aggregate has a stored head
        self.log_head = ZERO
        self.log_last = (0, 0)  # notification id and version of the last linked row
        self.agg_heads: dict[str, bytes] = {}
        self.agg_last: dict[str, tuple[int, int]] = {}
        self._topics: dict[str, bytes] = {}

    def start(self, log_head: bytes | None) -> None:
        """Begin on the stored log head (None: the store has no chain yet)."""
        self.started, self.fresh = True, log_head is None
        self.log_head = ZERO if log_head is None else log_head

    def unknown(self, rows: Sequence[Row]) -> list[str]:
        """Aggregates of ``rows`` whose stored head must be read before :meth:`link`."""
        if self.fresh:
            return []
        heads = self.agg_heads
        return [agg for agg in dict.fromkeys(r[0] for r in rows) if agg not in heads]

    def learn(self, asked: Sequence[str], found: dict[str, bytes]) -> None:
        """Record the stored heads ``found`` for the aggregates ``asked`` (others: none)."""
        for agg in asked:
            self.agg_heads[agg] = found.get(agg, ZERO)

    def link(self, ids: Sequence[int], rows: Sequence[Row]) -> list[bytes]:
        """The digests of ``rows`` (notification ids ``ids``), chained onto the heads.

        Each digest equals :func:`digest` of the same inputs (one buffer hashed at once
        instead of four updates: same bytes, same SHA-256).
        """
        out: list[bytes] = []
        append = out.append
        heads, last, topics = self.agg_heads, self.agg_last, self._topics
        get = heads.get
        prev = self.log_head
        for nid, (agg, version, topic, state) in zip(ids, rows, strict=True):
            t = topics.get(topic)
            if t is None:
                t = topics[topic] = topic.encode()
            prev = sha256(b"%b%b%b\x00%d\x00%b\x00%b" % (
                prev, get(agg, ZERO), agg.encode(), version, t, state,
            )).digest()
            heads[agg] = prev
            last[agg] = (nid, version)
            append(prev)
        if rows:
            self.log_head, self.log_last = prev, (ids[-1], rows[-1][1])
        return out

    def heads(self) -> list[tuple[str, int, int, bytes]]:
        """``chain_heads`` rows to upsert: the log's and every written aggregate's."""
        if not self.agg_last:
            return []
        heads = self.agg_heads
        return [(LOG_SCOPE, *self.log_last, self.log_head),
                *((agg, nid, version, heads[agg]) for agg, (nid, version) in
                  self.agg_last.items())]


def setting_digest(prev: bytes, seq: int, key: str, value: str, origin: str,
                   log_position: int, recorded_at: str) -> bytes:
    """The digest of one recorded settings change, chained to the previous change's."""
    return sha256(prev + f"{seq}\x00{key}\x00{origin}\x00{log_position}\x00{recorded_at}\x00"
                  .encode() + value.encode()).digest()


#: runs one SQL statement (``?`` placeholders) in the caller's transaction; returns its rows
Run = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


class SettingsLog:
    """Writes settings and their chained history, inside a transaction the caller holds.

    ``tables`` maps ``settings``, ``history`` and ``heads`` to the (qualified) table names.
    """

    def __init__(self, run: Run, tables: dict[str, str]) -> None:
        self.run, self.t = run, tables

    def create_statements(self, blob: str, bigint: str) -> list[str]:
        """The history table (the column types of the dialect)."""
        return [f"CREATE TABLE IF NOT EXISTS {self.t['history']} (seq {bigint} PRIMARY KEY, "
                "key TEXT NOT NULL, value TEXT NOT NULL, origin TEXT NOT NULL, "
                f"log_position {bigint} NOT NULL, recorded_at TEXT NOT NULL, "
                f"digest {blob} NOT NULL)"]

    def put(self, key: str, value: str, upsert: str, origin: str = SET) -> None:
        """Store ``value`` (``upsert``: the dialect's statement) and record the change
        (``origin``: :data:`SET`, or :func:`changed_by` its actor)."""
        self.run(upsert, (key, value))
        self._record(key, value, origin)

    def needs_adopting(self, has_settings: bool | None = None) -> bool:
        """Whether the store has settings (``has_settings``, when the caller knows) but
        neither a settings history nor a settings head (a store that had one and lost it
        is left for ``audit verify`` to report)."""
        if has_settings is None:
            has_settings = bool(self.run(f"SELECT 1 FROM {self.t['settings']} LIMIT 1", ()))
        return has_settings and not (
            self.run(f"SELECT 1 FROM {self.t['history']} LIMIT 1", ()) or self.run(
                f"SELECT 1 FROM {self.t['heads']} WHERE scope = ?", (SETTINGS_SCOPE,)))

    def adopt(self) -> None:
        """Record the stored settings of a store whose settings were never chained (when
        :meth:`needs_adopting`)."""
        if not self.needs_adopting():
            return
        for key, value in self.run(f"SELECT key, value FROM {self.t['settings']} "
                                   "ORDER BY key", ()):
            self._record(str(key), str(value), ADOPTED)

    def _record(self, key: str, value: str, origin: str) -> None:
        last = self.run(f"SELECT seq, digest FROM {self.t['history']} "
                        "ORDER BY seq DESC LIMIT 1", ())
        seq, prev = (int(last[0][0]) + 1, bytes(last[0][1])) if last else (1, ZERO)
        head = self.run(f"SELECT notification_id FROM {self.t['heads']} WHERE scope = ?",
                        (LOG_SCOPE,))
        position = int(head[0][0]) if head else 0
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        d = setting_digest(prev, seq, key, value, origin, position, at)
        self.run(f"INSERT INTO {self.t['history']} (seq, key, value, origin, log_position, "
                 "recorded_at, digest) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (seq, key, value, origin, position, at, d))
        self.run(f"INSERT INTO {self.t['heads']} (scope, notification_id, originator_version, "
                 "digest) VALUES (?, ?, 0, ?) ON CONFLICT (scope) DO UPDATE SET "
                 "notification_id = excluded.notification_id, digest = excluded.digest",
                 (SETTINGS_SCOPE, seq, d))
