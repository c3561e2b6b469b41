"""The hash chain that makes the event log tamper-evident.

Every stored event gets a SHA-256 digest covering its own bytes (aggregate id, version, topic,
state), the digest of the previous event in the whole log and the digest of the previous event
of the same aggregate. The digests go to ``event_digests`` and the latest digest of the log and
of each aggregate to ``chain_heads``, in the same transaction as the events (see
``stores/recorders.py``). ``lifecycle-es audit verify`` recomputes the chain.

A writer who can rewrite the whole chain and its heads can forge it (there is no secret):
anchor the heads outside the database to catch that (docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256
from typing import Any
from uuid import UUID

ZERO = bytes(32)
LOG_SCOPE = "log"
DIGESTS_TABLE = "event_digests"
HEADS_TABLE = "chain_heads"


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


def chain_batch(log_head: bytes, agg_heads: dict[str, bytes], aggs: Sequence[str],
                events: Sequence[Any]) -> tuple[list[bytes], bytes]:
    """Chain ``events`` (stored events, in notification order) onto the current heads.

    ``log_head`` is the digest of the log's last event (``ZERO`` for an empty log);
    ``agg_heads`` maps a canonical aggregate id to the digest of its last event and is
    updated in place; ``aggs`` holds each event's canonical aggregate id. Returns every
    event's digest and the new log head. Each digest equals :func:`digest` of the same
    inputs (one buffer hashed at once instead of four updates: same bytes, same SHA-256).
    """
    out: list[bytes] = []
    append = out.append
    get = agg_heads.get
    topics: dict[str, bytes] = {}
    prev = log_head
    for agg, ev in zip(aggs, events, strict=True):
        topic = topics.get(ev.topic)
        if topic is None:
            topic = topics[ev.topic] = ev.topic.encode()
        prev = sha256(b"%b%b%b\x00%d\x00%b\x00%b" % (
            prev, get(agg, ZERO), agg.encode(), ev.originator_version, topic, ev.state,
        )).digest()
        agg_heads[agg] = prev
        append(prev)
    return out, prev


@dataclass(frozen=True)
class Head:
    """The latest chained event of a scope (the whole log, or one aggregate)."""

    notification_id: int
    originator_version: int
    digest: bytes


@dataclass(frozen=True)
class Link:
    """One event's row in ``event_digests``."""

    notification_id: int
    originator_id: str
    originator_version: int
    digest: bytes


def extend(heads: dict[str, Head], events: Iterable[tuple[int, Any]]) -> list[Link]:
    """Chain ``(notification_id, stored_event)`` pairs (in notification order) onto ``heads``.

    ``heads`` maps a scope (``"log"`` or a canonical aggregate id) to its head and is updated
    in place; returns the new links. (A convenience over :func:`chain_batch`, which the
    recorders use directly.)
    """
    pairs = list(events)
    evs = [ev for _, ev in pairs]
    aggs = [canonical_id(ev.originator_id) for ev in evs]
    log = heads.get(LOG_SCOPE)
    agg_heads = {k: h.digest for k, h in heads.items() if k != LOG_SCOPE}
    digests, _ = chain_batch(log.digest if log else ZERO, agg_heads, aggs, evs)
    links = []
    for (nid, ev), agg, d in zip(pairs, aggs, digests, strict=True):
        links.append(Link(nid, agg, ev.originator_version, d))
        heads[LOG_SCOPE] = heads[agg] = Head(nid, ev.originator_version, d)
    return links
