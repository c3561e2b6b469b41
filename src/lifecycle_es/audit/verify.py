"""Checking the hash chain: is the stored log the one that was written?

The writer (``stores/recorders.py``) chains every event to the previous one of the log and of
its aggregate (``stores/chain.py``) and keeps the heads. :func:`verify` reads the events, their
digests and the heads in one snapshot, in log order, and reports every break:

- ``modified``: the event's bytes (or a digest it is chained to) no longer hash to its digest;
- ``deleted``: an event in the chain is missing (its digest remains, or its aggregate's
  versions jump);
- ``truncated``: the last events of the log or of an aggregate are gone (the heads go further);
- ``swapped``: two events of an aggregate exchanged their versions or contents;
- ``reordered``: the event at a position is not the one chained there;
- ``forged``: an event that was never chained (no digest), or chained past the recorded heads.

Each link is checked against the *stored* digests of its predecessors, so one altered event
is reported once, at its own customer and version, not as a cascade.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from lifecycle_es.errors import FieldProblem, InvalidInput, LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.stores.chain import (
    DIGESTS_TABLE,
    HEADS_TABLE,
    LOG_SCOPE,
    ZERO,
    canonical_id,
    digest,
)

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine
    from lifecycle_es.stores.url import StoreURL

log = get_logger("lifecycle_es.audit.verify")
BATCH = 5_000


@dataclass(frozen=True)
class Break:
    """One place where the stored log differs from what was chained."""

    kind: str
    aggregate: str  # "customer" | "campaign" | "log" | "unknown"
    key: str  # external id (or aggregate UUID when no event of it is left)
    version: int | None
    position: int | None
    detail: str


@dataclass(frozen=True)
class ChainHead:
    """The latest chained event of the whole log: what to anchor outside the database."""

    position: int
    version: int
    digest: str  # hex

    def anchor(self) -> str:
        """``POSITION:DIGEST``, as ``audit verify --anchor`` takes it."""
        return f"{self.position}:{self.digest}"


@dataclass
class VerifyReport:
    """What :func:`verify` found."""

    events: int = 0
    chained: int = 0
    breaks: list[Break] = field(default_factory=list)
    head: ChainHead | None = None

    @property
    def clean(self) -> bool:
        return not self.breaks


@dataclass
class _Row:
    """An event row or a digest row at one position."""

    oid: str
    version: int
    topic: str = ""
    state: bytes = b""
    digest: bytes = b""


class _Snapshot:
    """A read-only, consistent view of the events' tables (SQLite or PostgreSQL)."""

    def __init__(self, store: StoreURL, events_table: str) -> None:
        self.kind = store.kind
        if store.kind == "sqlite":
            self.conn: Any = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True,
                                             isolation_level=None)
            self.conn.execute("BEGIN")  # one read snapshot for every table
            self.nid, self.p = "rowid", "?"
            self.t = {"events": events_table, "digests": DIGESTS_TABLE, "heads": HEADS_TABLE}
        elif store.kind == "postgresql":
            from psycopg import sql

            from lifecycle_es.stores.postgres import connect

            self.conn = connect(store)
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self.nid, self.p = "notification_id", "%s"
            self.t = {k: sql.SQL("{}.{}").format(sql.Identifier(store.schema),
                                                 sql.Identifier(v)).as_string(self.conn)
                      for k, v in (("events", events_table), ("digests", DIGESTS_TABLE),
                                   ("heads", HEADS_TABLE))}
        else:
            raise LifecycleError(
                f"audit verify: store {store.redacted()} keeps no hash chain "
                "(use a SQLite or PostgreSQL store)"
            )

    def rows(self, which: str) -> Iterator[tuple[int, _Row]]:
        """(position, row) of the events or the digests, in log order, in batches."""
        if which == "events":
            oid = "originator_id::text" if self.kind == "postgresql" else "originator_id"
            cols, nid = f"{self.nid}, {oid}, originator_version, topic, state", self.nid
        else:
            cols, nid = "notification_id, originator_id, originator_version, digest", \
                "notification_id"
        sql = (f"SELECT {cols} FROM {self.t[which]} WHERE {nid} > {self.p} "
               f"ORDER BY {nid} LIMIT {self.p}")
        last = -1
        while True:
            batch = self.conn.execute(sql, (last, BATCH)).fetchall()
            for r in batch:
                if which == "events":
                    yield int(r[0]), _Row(canonical_id(r[1]), int(r[2]), r[3], _bytes(r[4]))
                else:
                    yield int(r[0]), _Row(r[1], int(r[2]), digest=_bytes(r[3]))
            if len(batch) < BATCH:
                return
            last = int(batch[-1][0])

    def heads(self) -> dict[str, tuple[int, int, bytes]]:
        sql = f"SELECT scope, notification_id, originator_version, digest FROM {self.t['heads']}"
        return {r[0]: (int(r[1]), int(r[2]), bytes(r[3]))
                for r in self.conn.execute(sql).fetchall()}

    def close(self) -> None:
        self.conn.rollback() if self.kind == "postgresql" else self.conn.execute("ROLLBACK")
        self.conn.close()


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _bytes(value: Any) -> bytes:
    """A BLOB/bytea column's bytes (a tampered SQLite cell may have become TEXT)."""
    return value.encode() if isinstance(value, str) else bytes(value)


def _merged(snap: _Snapshot) -> Iterator[tuple[int, _Row | None, _Row | None]]:
    """(position, event row, digest row) over the union of both tables' positions."""
    events, digests = snap.rows("events"), snap.rows("digests")
    e, d = next(events, None), next(digests, None)
    while e is not None or d is not None:
        if d is None or (e is not None and e[0] < d[0]):
            assert e is not None
            yield e[0], e[1], None
            e = next(events, None)
        elif e is None or d[0] < e[0]:
            yield d[0], None, d[1]
            d = next(digests, None)
        else:
            yield e[0], e[1], d[1]
            e, d = next(events, None), next(digests, None)


def parse_anchor(text: str) -> tuple[int, bytes]:
    """``POSITION:HEXDIGEST`` (as printed by ``audit verify --print-heads``)."""
    try:
        pos, hexd = text.strip().split(":", 1)
        value = (int(pos), bytes.fromhex(hexd))
        if len(value[1]) != len(ZERO) or value[0] < 1:
            raise ValueError
    except ValueError:
        raise InvalidInput([FieldProblem("anchor", text, "expected POSITION:SHA256HEX as "
                                         "printed by 'audit verify --print-heads'")],
                           "audit verify") from None
    return value


class _Verifier:
    def __init__(self) -> None:
        self.report = VerifyReport()
        self.prev_log = ZERO
        self.prev: dict[str, tuple[int, int, bytes]] = {}  # oid -> (position, version, digest)
        self.names: dict[str, tuple[str, str]] = {}  # oid -> (aggregate kind, external id)
        self.raw: list[tuple[str, str, int | None, int | None, str]] = []
        self.suspects: dict[str, list[tuple[int, _Row, _Row, bytes, bytes]]] = {}
        self.last_event = 0

    def name(self, oid: str, state: bytes) -> None:
        if oid not in self.names:
            try:
                data = orjson.loads(state)
            except orjson.JSONDecodeError:
                return
            if isinstance(data, dict):
                for kind in ("customer", "campaign"):
                    if isinstance(data.get(kind), str):
                        self.names[oid] = (kind, data[kind])
                        return

    def add(self, kind: str, oid: str, version: int | None, pos: int | None,
            detail: str) -> None:
        self.raw.append((kind, oid, version, pos, detail))

    def step(self, pos: int, ev: _Row | None, dg: _Row | None) -> None:
        if ev is not None:
            self.report.events += 1
            self.last_event = pos
            self.name(ev.oid, ev.state)
        if dg is None:
            assert ev is not None
            self.add("forged", ev.oid, ev.version, pos, "event has no digest: never chained")
            return
        self.report.chained += 1
        before = self.prev.get(dg.oid)
        first = before[1] + 1 if before else 1
        gap = dg.version > first
        if gap:
            self.add("deleted", dg.oid, first, None,
                     f"version(s) {_span(first, dg.version - 1)} missing from the chain and "
                     "the log")
        if ev is None:
            self.add("deleted", dg.oid, dg.version, pos, "event removed (its digest remains)")
        elif ev.oid != dg.oid:  # another aggregate's event took the position
            self.add("deleted", dg.oid, dg.version, pos,
                     "event removed; another event now holds its position")
            self.add("forged", ev.oid, ev.version, pos,
                     "event at a position chained to another aggregate: never chained")
        elif ev.version != dg.version:
            self.add("reordered", ev.oid, ev.version, pos,
                     f"position holds version {ev.version}, chained version {dg.version}")
        elif not gap:  # after a gap the predecessor's digest is gone: nothing to check
            prev_agg = before[2] if before else ZERO
            if digest(self.prev_log, prev_agg, ev.oid, ev.version, ev.topic,
                      ev.state) != dg.digest:
                self.suspects.setdefault(ev.oid, []).append(
                    (pos, ev, dg, self.prev_log, prev_agg))
        self.prev_log = dg.digest
        self.prev[dg.oid] = (pos, dg.version, dg.digest)

    def finish(self, heads: dict[str, tuple[int, int, bytes]]) -> VerifyReport:
        self._swaps()
        last_pos = max((p for p, _, _ in self.prev.values()), default=0)
        log_head = heads.pop(LOG_SCOPE, None)
        if log_head is not None:
            self.report.head = ChainHead(log_head[0], log_head[1], log_head[2].hex())
            if log_head[0] > last_pos:
                self.add("truncated", LOG_SCOPE, None, log_head[0],
                         f"log head is at position {log_head[0]}, the chain ends at {last_pos}")
            elif log_head[0] < last_pos:
                self.add("forged", LOG_SCOPE, None, last_pos,
                         f"events chained after the log head (position {log_head[0]})")
            elif log_head[2] != self.prev_log:
                self.add("modified", LOG_SCOPE, None, log_head[0], "log head digest differs")
        elif self.prev:
            self.add("forged", LOG_SCOPE, None, last_pos, "chain has no log head")
        for oid, (pos, version, dig) in self.prev.items():
            head = heads.pop(oid, None)
            if head is None:
                self.add("forged", oid, version, pos, "aggregate has no head: never chained")
            elif head[1] > version:
                self.add("truncated", oid, version + 1, head[0],
                         f"version(s) {_span(version + 1, head[1])} are gone (the head is "
                         f"version {head[1]})")
            elif head[1] < version:
                self.add("forged", oid, head[1] + 1, pos,
                         f"versions after {head[1]} were chained past the head")
            elif head[2] != dig:
                self.add("modified", oid, version, pos, "aggregate head digest differs")
        for oid, head in heads.items():
            self.add("truncated", oid, 1, head[0],
                     f"every event (version(s) {_span(1, head[1])}) is gone")
        self.raw = [("truncated", *r[1:4], "last event(s) of the log removed (digest remains)")
                    if r[0] == "deleted" and r[3] is not None and r[3] > self.last_event else r
                    for r in self.raw]
        self._resolve()
        return self.report

    def _swaps(self) -> None:
        """Name pairs of mismatched events of one aggregate that hold each other's bytes."""
        for oid, rows in self.suspects.items():
            swapped: set[int] = set()
            for a in rows:
                for b in rows:
                    if a is b or a[0] in swapped:
                        continue
                    ea = a[1]
                    _, _, db, bl, bg = b
                    if digest(bl, bg, oid, db.version, ea.topic, ea.state) == db.digest:
                        swapped.update((a[0], b[0]))
            for pos, ev, _, _, _ in rows:
                if pos in swapped:
                    self.add("swapped", oid, ev.version, pos,
                             "holds the bytes of another version of the same aggregate")
                else:
                    self.add("modified", oid, ev.version, pos,
                             "stored event does not hash to its digest (bytes changed, or a "
                             "digest it is chained to was rewritten)")
        self.raw = [r for r in self.raw if r[0] != "reordered"] + [
            ("swapped" if self._counterpart(r) else r[0], *r[1:])
            for r in self.raw if r[0] == "reordered"
        ]

    def _counterpart(self, r: tuple[str, str, int | None, int | None, str]) -> bool:
        """A reordered row whose version another reordered row of the aggregate holds."""
        return any(o[0] == "reordered" and o[1] == r[1] and o[3] != r[3] for o in self.raw)

    def _resolve(self) -> None:
        for kind, oid, version, pos, detail in sorted(
            self.raw, key=lambda r: (r[3] if r[3] is not None else 0, r[1])
        ):
            if oid == LOG_SCOPE:
                agg, key = "log", LOG_SCOPE
            else:
                agg, key = self.names.get(oid, ("unknown", oid))
            self.report.breaks.append(Break(kind, agg, key, version, pos, detail))


def verify(engine: LifecycleEngine, anchor: str | None = None) -> VerifyReport:
    """Recompute the hash chain of ``engine``'s store and report every break.

    ``anchor`` (``POSITION:DIGEST`` from an earlier ``--print-heads``) also checks that the
    digest at that position is still the one anchored outside the database.
    """
    wanted = parse_anchor(anchor) if anchor is not None else None
    table = getattr(engine.recorder, "events_table_name", "")
    snap = _Snapshot(engine.store, table)
    try:
        v = _Verifier()
        anchor_digest: dict[int, bytes] = {}
        for pos, ev, dg in _merged(snap):
            v.step(pos, ev, dg)
            if wanted is not None and dg is not None and pos == wanted[0]:
                anchor_digest[pos] = dg.digest
        report = v.finish(snap.heads())
    finally:
        snap.close()
    if wanted is not None:
        pos, want = wanted
        got = anchor_digest.get(pos)
        if got != want:
            why = ("no chained event at the anchored position" if got is None
                   else "digest at the anchored position differs from the anchor: the chain "
                        "was rewritten")
            report.breaks.append(Break("modified" if got else "truncated", "log", LOG_SCOPE,
                                       None, pos, why))
    log.info("audit.verify", events=report.events, breaks=len(report.breaks))
    return report
