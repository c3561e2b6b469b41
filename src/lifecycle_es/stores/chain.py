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
    in place; returns the new links.
    """
    links = []
    for notification_id, ev in events:
        agg = canonical_id(ev.originator_id)
        log_head, agg_head = heads.get(LOG_SCOPE), heads.get(agg)
        d = digest(log_head.digest if log_head else ZERO, agg_head.digest if agg_head else ZERO,
                   agg, ev.originator_version, ev.topic, bytes(ev.state))
        links.append(Link(notification_id, agg, ev.originator_version, d))
        heads[LOG_SCOPE] = Head(notification_id, ev.originator_version, d)
        heads[agg] = Head(notification_id, ev.originator_version, d)
    return links


def scopes_of(events: Sequence[Any]) -> list[str]:
    """The head scopes an insert of ``events`` touches."""
    return [LOG_SCOPE, *dict.fromkeys(canonical_id(e.originator_id) for e in events)]
