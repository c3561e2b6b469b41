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
is reported once, at its own customer and version, not as a cascade. A customer whose every
event and digest is gone is reported at its own id (named by the ``audit_index`` read model
when it still holds it): the events that followed its events in the log cannot be re-hashed
(their predecessor's digest is gone) and are named in that break, not blamed.

The settings (``lifecycle_settings``: the stage model) are checked too: their change history
(``settings_history``) is a chain of its own, and every stored value must be the last one
recorded for its key (breaks of aggregate ``settings``, key = the setting's key, version = the
change's sequence number, position = the log position it was made at).

What the log's meaning depends on beyond the events is checked against them: the data keys
and the master key's fingerprint (``key_check.py``; breaks of the customer, and of aggregate
``keys`` for the fingerprint) and the stored snapshots (``snapshot_check.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lifecycle_es.domain.ids import campaign_id, customer_id
from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.logs import get_logger
from lifecycle_es.reading.audit.key_check import (
    ERASED_TOPIC,
    MASTER_KEY,
    KeyCheck,
    master_breaks,
)
from lifecycle_es.reading.audit.snapshot_check import check_snapshots
from lifecycle_es.stores.chain import (
    LOG_SCOPE,
    SETTINGS_SCOPE,
    ZERO,
    canonical_id,
    digest,
    setting_digest,
)
from lifecycle_es.stores.chain_snapshot import ChainRow, ChainSnapshot

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source

log = get_logger("lifecycle_es.audit.verify")
#: the read model that names a customer whose every event is gone (position -> external id)
NAMING_TABLE = "audit_index"
#: the key of a settings break about the whole settings history, not one setting
ALL_KEYS = "*"


@dataclass(frozen=True)
class Break:
    """One place where the stored log differs from what was chained."""

    kind: str
    aggregate: str  # "customer" | "campaign" | "log" | "settings" | "keys" | "unknown"
    key: str  # external id (aggregate UUID when nothing names it), or the setting's key
    version: int | None  # settings: the change's sequence number
    position: int | None
    detail: str


@dataclass(frozen=True)
class ChainHead:
    """The latest chained event of the whole log: what to anchor outside the database."""

    position: int
    version: int
    digest: str  # hex

    def anchor(self) -> str:
        """``POSITION:DIGEST``, the log part of what ``audit verify --anchor`` takes."""
        return f"{self.position}:{self.digest}"


@dataclass(frozen=True)
class SettingChange:
    """One recorded change of a store-wide setting (``settings_history``)."""

    seq: int
    key: str
    origin: str  # "set" (through the engine) | "adopted" (found on a store made before)
    log_position: int  # the log head when the change was made (0: no event yet)
    recorded_at: str
    value: str
    digest: str  # hex


@dataclass
class VerifyReport:
    """What :func:`verify` found."""

    events: int = 0
    chained: int = 0
    breaks: list[Break] = field(default_factory=list)
    head: ChainHead | None = None
    settings: list[SettingChange] = field(default_factory=list)
    keys: int = 0  # rows of the keys table checked
    snapshots: int = 0  # stored snapshots checked

    @property
    def clean(self) -> bool:
        return not self.breaks

    def anchor(self) -> str | None:
        """What to keep outside the database: ``POSITION:DIGEST[,settings=SEQ:DIGEST]``.

        The log head, and the last recorded settings change when there is one (an empty log
        is ``0:`` and 64 zeros). None when there is neither.
        """
        log_part = self.head.anchor() if self.head else (f"0:{ZERO.hex()}"
                                                         if self.settings else None)
        if not self.settings:
            return log_part
        last = self.settings[-1]
        return f"{log_part},settings={last.seq}:{last.digest}"


@dataclass(frozen=True)
class Anchor:
    """A parsed anchor: the log head's position and digest, and the settings head's."""

    position: int
    digest: bytes
    settings: tuple[int, bytes] | None = None


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _merged(snap: ChainSnapshot) -> Iterator[tuple[int, ChainRow | None, ChainRow | None]]:
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


def _head(text: str, what: str, allow_empty: bool) -> tuple[int, bytes]:
    pos, hexd = text.split(":", 1)
    value = (int(pos), bytes.fromhex(hexd))
    if len(value[1]) != len(ZERO) or value[0] < 0 or (value[0] == 0 and not (
            allow_empty and value[1] == ZERO)):
        raise ValueError(what)
    return value


def parse_anchor(text: str) -> Anchor:
    """``POSITION:HEXDIGEST[,settings=SEQ:HEXDIGEST]`` (as ``audit verify --print-heads``
    prints it; anchors printed before the settings were chained have no settings part)."""
    try:
        log_part, _, settings_part = text.strip().partition(",")
        pos, dig = _head(log_part, "log", allow_empty=True)
        settings = None
        if settings_part:
            name, eq, rest = settings_part.partition("=")
            if name.strip() != "settings" or not eq:
                raise ValueError(name)
            settings = _head(rest.strip(), "settings", allow_empty=False)
    except ValueError:
        raise InvalidInput([FieldProblem("anchor", text, "expected POSITION:SHA256HEX"
                                         "[,settings=SEQ:SHA256HEX] as printed by "
                                         "'audit verify --print-heads'")],
                           "audit verify") from None
    return Anchor(pos, dig, settings)


#: a break before it is named: (kind, aggregate uuid or scope, version, position, detail)
_Raw = tuple[str, str, int | None, int | None, str]


class _Verifier:
    def __init__(self, decode: Callable[[str, bytes], dict[str, Any]]) -> None:
        self.decode = decode  # (topic, stored state) -> the event's fields
        self.report = VerifyReport()
        self.prev_log = ZERO
        self.prev_pos = 0  # position of the last chained row (the next one's log predecessor)
        self.prev: dict[str, tuple[int, int, bytes]] = {}  # oid -> (position, version, digest)
        self.names: dict[str, tuple[str, str]] = {}  # oid -> (aggregate kind, external id)
        self.raw: list[_Raw] = []
        # oid -> (position, event, digest row, prev log digest, prev aggregate digest,
        # position of the log predecessor)
        self.suspects: dict[str, list[tuple[int, ChainRow, ChainRow, bytes, bytes, int]]] = {}
        # where events vanished: (after, before, oid) = somewhere strictly between the
        # positions, of that aggregate; the index of the break that reports it
        self.holes: list[tuple[int, int, str, int]] = []
        # break index -> events (aggregate, version, position) not re-hashed after its hole
        self._notes: dict[int, list[tuple[str, int, int]]] = {}
        self.last_event = 0

    def name(self, oid: str, topic: str, state: bytes) -> None:
        if oid not in self.names:
            try:  # through the store's codec: a cipher or compressor may be configured
                data = self.decode(topic, state)
            except Exception:  # tampered bytes or topic: the break says so, not the name
                return
            if isinstance(data, dict):
                for kind in ("customer", "campaign"):
                    if isinstance(data.get(kind), str):
                        self.names[oid] = (kind, data[kind])
                        return

    def add(self, kind: str, oid: str, version: int | None, pos: int | None,
            detail: str) -> int:
        self.raw.append((kind, oid, version, pos, detail))
        return len(self.raw) - 1

    def step(self, pos: int, ev: ChainRow | None, dg: ChainRow | None) -> None:
        if ev is not None:
            self.report.events += 1
            self.last_event = pos
            self.name(ev.oid, ev.topic, ev.state)
        if dg is None:
            assert ev is not None
            self.add("forged", ev.oid, ev.version, pos, "event has no digest: never chained")
            return
        self.report.chained += 1
        before = self.prev.get(dg.oid)
        first = before[1] + 1 if before else 1
        gap = dg.version > first
        if gap:
            i = self.add("deleted", dg.oid, first, None,
                         f"version(s) {_span(first, dg.version - 1)} missing from the chain "
                         "and the log")
            self.holes.append((before[0] if before else 0, pos, dg.oid, i))
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
                    (pos, ev, dg, self.prev_log, prev_agg, self.prev_pos))
        self.prev_log, self.prev_pos = dg.digest, pos
        self.prev[dg.oid] = (pos, dg.version, dg.digest)

    def finish(self, heads: dict[str, tuple[int, int, bytes]]) -> VerifyReport:
        heads.pop(SETTINGS_SCOPE, None)  # checked by _Settings
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
        known: dict[int, bytes] = {}  # digests of vanished events the heads still hold
        for oid, (pos, version, dig) in self.prev.items():
            head = heads.pop(oid, None)
            if head is None:
                self.add("forged", oid, version, pos, "aggregate has no head: never chained")
            elif head[1] > version:
                i = self.add("truncated", oid, version + 1, head[0],
                             f"version(s) {_span(version + 1, head[1])} are gone (the head is "
                             f"version {head[1]})")
                self.holes.append((pos, head[0] + 1, oid, i))
                known[head[0]] = head[2]
            elif head[1] < version:
                self.add("forged", oid, head[1] + 1, pos,
                         f"versions after {head[1]} were chained past the head")
            elif head[2] != dig:
                self.add("modified", oid, version, pos, "aggregate head digest differs")
        for oid, head in heads.items():  # every event and digest of the aggregate is gone
            i = self.add("deleted", oid, 1, head[0],
                         f"deleted: every event (version(s) {_span(1, head[1])}) and its "
                         f"digest are gone; the last was at position {head[0]}")
            self.holes.append((0, head[0] + 1, oid, i))
            known[head[0]] = head[2]
        self._after_holes(known)
        self._swaps()
        self.raw = [("truncated", *r[1:4], "last event(s) of the log removed (digest remains)")
                    if r[0] == "deleted" and r[3] is not None and r[3] > self.last_event
                    and r[4].startswith("event removed") else r
                    for r in self.raw]
        return self.report

    def _after_holes(self, known: dict[int, bytes]) -> None:
        """Take out of the suspects the events that follow removed events in the log.

        Such an event was chained to a digest that is gone, so it cannot be re-hashed: unless
        a head still holds that digest (the removed event was the last of its aggregate), it
        is named in the break of the removal instead of being reported as modified.
        """
        notes: dict[int, list[tuple[str, int, int]]] = {}
        for oid, rows in self.suspects.items():
            kept = []
            for row in rows:
                pos, ev, dg, _, prev_agg, q = row
                # a removal between the event and its stored predecessor in the log
                holes = [h for h in self.holes if max(q, h[0]) + 1 < min(pos, h[1])]
                if not holes:
                    kept.append(row)
                    continue
                if not any(digest(known[p], prev_agg, oid, ev.version, ev.topic, ev.state)
                           == dg.digest for p in known if q < p < pos):
                    notes.setdefault(holes[0][3], []).append((oid, ev.version, pos))
            self.suspects[oid] = kept
        self._notes = notes

    def _swaps(self) -> None:
        """Name pairs of mismatched events of one aggregate that hold each other's bytes."""
        for oid, rows in self.suspects.items():
            swapped: set[int] = set()
            for a in rows:
                for b in rows:
                    if a is b or a[0] in swapped:
                        continue
                    ea = a[1]
                    _, _, db, bl, bg, _ = b
                    if digest(bl, bg, oid, db.version, ea.topic, ea.state) == db.digest:
                        swapped.update((a[0], b[0]))
            for pos, ev, _, _, _, q in rows:
                if pos in swapped:
                    self.add("swapped", oid, ev.version, pos,
                             "holds the bytes of another version of the same aggregate")
                else:
                    before = (f", or the event(s) before it in the log (positions "
                              f"{_span(q + 1, pos - 1)}) were removed with their digests"
                              if pos > q + 1 else "")
                    self.add("modified", oid, ev.version, pos,
                             "stored event does not hash to its digest (bytes changed, or a "
                             f"digest it is chained to was rewritten{before})")
        self.raw = [r for r in self.raw if r[0] != "reordered"] + [
            ("swapped" if self._counterpart(r) else r[0], *r[1:])
            for r in self.raw if r[0] == "reordered"
        ]

    def _counterpart(self, r: _Raw) -> bool:
        """A reordered row whose version another reordered row of the aggregate holds."""
        return any(o[0] == "reordered" and o[1] == r[1] and o[3] != r[3] for o in self.raw)

    def resolve(self, snap: ChainSnapshot) -> None:
        """Name every break's aggregate and append the breaks to the report."""
        notes = self._notes
        raw = [(k, oid, v, p, d + self._unchecked(notes.get(i, []), snap))
               for i, (k, oid, v, p, d) in enumerate(self.raw)]
        for kind, oid, version, pos, detail in sorted(
            raw, key=lambda r: (r[3] if r[3] is not None else 0, r[1])
        ):
            if oid == LOG_SCOPE:
                agg, key = "log", LOG_SCOPE
            else:
                agg, key = self._named(oid, pos, snap)
            self.report.breaks.append(Break(kind, agg, key, version, pos, detail))

    def _unchecked(self, rows: list[tuple[str, int, int]], snap: ChainSnapshot) -> str:
        if not rows:
            return ""
        named = ", ".join(f"{self._named(oid, pos, snap)[1]} v{v} at {pos}"
                          for oid, v, pos in rows)
        return (f"; the event(s) following it in the log could not be re-hashed (their "
                f"predecessor's digest is gone): {named}")

    def _named(self, oid: str, pos: int | None, snap: ChainSnapshot) -> tuple[str, str]:
        """(aggregate kind, external id), from the events or, when none is left, from the
        naming read model at the aggregate's last known position (confirmed by the id)."""
        if oid not in self.names:
            positions = [p for p in ((self.prev.get(oid) or (None,))[0], pos) if p]
            self.names[oid] = next(
                ((kind, ext) for p in positions for kind, ext in _lookup(snap, p)
                 if canonical_id(customer_id(ext) if kind == "customer"
                                 else campaign_id(ext)) == oid),
                ("unknown", oid))
        return self.names[oid]


def _lookup(snap: ChainSnapshot, position: int) -> list[tuple[str, str]]:
    """What the naming read model says is at ``position`` (nothing when it is not built)."""
    if not snap.has("naming"):
        return []
    return snap.named(position)


class _Settings:
    """Checks the settings chain and the stored settings against it."""

    def __init__(self, snap: ChainSnapshot, head: tuple[int, int, bytes] | None) -> None:
        self.breaks: list[Break] = []
        self.changes: list[SettingChange] = []
        if not snap.has("history"):  # a store this version never opened: nothing recorded
            return
        self.changes = [SettingChange(*row) for row in snap.history()]
        stored = snap.settings() if snap.has("settings") else {}
        self._chain(head)
        self._values(stored)

    def add(self, kind: str, key: str, seq: int | None, pos: int | None, detail: str) -> None:
        self.breaks.append(Break(kind, "settings", key, seq, pos, detail))

    def _chain(self, head: tuple[int, int, bytes] | None) -> None:
        prev, expected = ZERO, 1
        for c in self.changes:
            if c.seq > expected:
                self.add("deleted", c.key, expected, None,
                         f"recorded change(s) {_span(expected, c.seq - 1)} of the settings "
                         "are gone")
            elif setting_digest(prev, c.seq, c.key, c.value, c.origin, c.log_position,
                                c.recorded_at).hex() != c.digest:
                self.add("modified", c.key, c.seq, c.log_position,
                         "recorded settings change does not hash to its digest (its value, "
                         "key, time or position changed, or its digest was rewritten)")
            prev, expected = bytes.fromhex(c.digest), c.seq + 1
        last = self.changes[-1] if self.changes else None
        if head is None:
            if last is not None:
                self.add("forged", last.key, last.seq, last.log_position,
                         "the settings history has no head: never chained")
        elif last is None:
            self.add("truncated", ALL_KEYS, 1, None,
                     f"every recorded settings change (1..{head[0]}) is gone")
        elif head[0] > last.seq:
            self.add("truncated", last.key, last.seq + 1, None,
                     f"recorded settings change(s) {_span(last.seq + 1, head[0])} are gone "
                     f"(the head is change {head[0]})")
        elif head[0] < last.seq:
            self.add("forged", last.key, head[0] + 1, last.log_position,
                     f"settings changes after {head[0]} were recorded past the head")
        elif head[2].hex() != last.digest:
            self.add("modified", last.key, last.seq, last.log_position,
                     "settings head digest differs")

    def _values(self, stored: dict[str, str]) -> None:
        latest = {c.key: c for c in self.changes}
        for key in sorted(stored.keys() | latest.keys()):
            c = latest.get(key)
            if c is None:
                self.add("forged", key, None, None,
                         "setting stored without a recorded change (not set through the "
                         "engine)")
            elif key not in stored:
                self.add("deleted", key, c.seq, c.log_position,
                         f"setting removed (its last recorded change is {c.seq})")
            elif stored[key] != c.value:
                self.add("modified", key, c.seq, c.log_position,
                         f"stored value differs from its last recorded change ({c.seq}): "
                         "changed behind the engine's back")


def _anchored(wanted: Anchor, report: VerifyReport, at_anchor: bytes | None,
              chain_end: int) -> list[Break]:
    """Breaks between the anchor and the store: rewritten, truncated or rolled back."""
    out: list[Break] = []
    pos = wanted.position
    head = report.head.position if report.head else 0
    if pos > 0:
        if at_anchor == wanted.digest:
            pass
        elif at_anchor is not None:
            out.append(Break("modified", "log", LOG_SCOPE, None, pos,
                             "digest at the anchored position differs from the anchor: the "
                             "chain was rewritten"))
        elif chain_end == 0 and head == 0:
            out.append(Break("truncated", "log", LOG_SCOPE, None, pos,
                             f"the log is empty; the anchor has events up to position {pos}"))
        elif chain_end < pos:
            out.append(Break("truncated", "log", LOG_SCOPE, None, pos,
                             f"the chain ends at position {chain_end}, before the anchor "
                             f"(position {pos}): the log's last events were removed, or the "
                             "database was rolled back"))
        else:
            out.append(Break("deleted", "log", LOG_SCOPE, None, pos,
                             "no chained event at the anchored position (later ones exist): "
                             "removed"))
        if head < pos and chain_end >= pos:
            out.append(Break("truncated", "log", LOG_SCOPE, None, head,
                             f"the log head (position {head}) is older than the anchor "
                             f"(position {pos})"))
    if wanted.settings is not None:
        seq, want = wanted.settings
        got = next((c for c in report.settings if c.seq == seq), None)
        last = report.settings[-1].seq if report.settings else 0
        if got is not None and got.digest == want.hex():
            pass
        elif got is not None:
            out.append(Break("modified", "settings", got.key, seq, got.log_position,
                             "recorded settings change differs from the anchor: the settings "
                             "history was rewritten"))
        elif last < seq:
            out.append(Break("truncated", "settings", ALL_KEYS, seq, None,
                             f"the settings history ends at change {last}, before the "
                             f"anchor's change {seq}: removed or rolled back"))
        else:
            out.append(Break("deleted", "settings", ALL_KEYS, seq, None,
                             f"the anchored settings change {seq} is gone"))
    return out


def _stored_keys(snap: ChainSnapshot, keys: KeyCheck, known: set[str], v: _Verifier,
                 report: VerifyReport) -> list[Break]:
    """Check the keys tables (``key_check.py``): the data keys' breaks go to ``v``; the
    master key's fingerprint's are returned (aggregate ``keys``)."""
    rows = snap.keys() if snap.has("keys") else {}
    report.keys = len(rows)
    keys.check(rows, known, v.add)
    keyring = keys.mapper.keyring
    fingerprint = snap.master_fingerprint() if snap.has("master") else None
    return [Break(kind, "keys", MASTER_KEY, None, None, detail) for kind, detail in
            master_breaks(fingerprint, len(rows), len(keys.sealed),
                          None if keyring is None else keyring.master.fingerprint)]


def verify(engine: Source, anchor: str | None = None) -> VerifyReport:
    """Recompute the hash chains of ``engine``'s store (events, settings), check the keys
    tables and the snapshots against them; report every break.

    ``anchor`` (``POSITION:DIGEST[,settings=SEQ:DIGEST]`` from an earlier ``--print-heads``)
    also checks that the store still extends what was anchored outside the database.
    """
    wanted = parse_anchor(anchor) if anchor is not None else None
    table = getattr(engine.event_log.recorder, "events_table_name", "")
    snap = ChainSnapshot(engine.store, table, NAMING_TABLE, engine.event_log.recorder)
    try:
        v = _Verifier(engine.event_log.decode_state)
        keys = KeyCheck(engine.event_log.mapper)
        done = keys.done  # inline below: this loop runs per event
        at_anchor: bytes | None = None
        chain_end = 0
        for pos, ev, dg in _merged(snap):
            v.step(pos, ev, dg)
            if ev is not None and (ev.oid not in done or ev.topic == ERASED_TOPIC):
                keys.see(ev, dg is not None and dg.oid == ev.oid and dg.version == ev.version)
            if dg is not None:
                chain_end = pos
                if wanted is not None and pos == wanted.position:
                    at_anchor = dg.digest
        heads = snap.heads()
        reached = {oid: h[1] for oid, h in heads.items()}
        reached.update((oid, max(p[1], reached.get(oid, 0))) for oid, p in v.prev.items())
        settings = _Settings(snap, heads.get(SETTINGS_SCOPE))
        report = v.finish(heads)
        master = _stored_keys(snap, keys, set(reached), v, report)
        if snap.has("snapshots"):
            report.snapshots = check_snapshots(snap.snapshots(), engine.event_log, reached,
                                               v.add)
        v.resolve(snap)
    finally:
        snap.close()
    report.settings = settings.changes
    report.breaks.extend(settings.breaks)
    report.breaks.extend(master)
    if wanted is not None:
        report.breaks.extend(_anchored(wanted, report, at_anchor, chain_end))
    log.info("audit.verify", events=report.events, breaks=len(report.breaks),
             settings_changes=len(report.settings), keys=report.keys,
             snapshots=report.snapshots)
    return report
