"""Checking a bulk write's commands: each against the state the ones before it left.

A :class:`Checker` keeps the aggregates of one import in memory, applies each command to its
aggregate (the domain's own rules), records every problem with its line number and returns
the events of the commands that passed as rows for the recorders. The engine runs one; a large
import's writer process runs a second one on its share of the aggregates
(``writing/bulk_write.py``): commands of different aggregates never depend on each other, so
the two check in parallel and see exactly what one checker would.

Memory grows with the customers, not the events: once the events are written somewhere they
can be read back (a writer process's open transaction: :attr:`Checker.read_back`), a
customer keeps only its state, the state before its last :data:`KEEP_EVENTS` to
:data:`2 * KEEP_EVENTS <KEEP_EVENTS>` events, and those events (``Customer.rebase``). A void
of one of those is folded in memory; a void of an older event reads the customer's events
back from the transaction (docs/import.md, "Memory").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from lifecycle_es.commands import COMMANDS, CampaignCommand, Command
from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.customer_snapshot import CustomerSnapshot
from lifecycle_es.domain.ids import normalise_id
from lifecycle_es.domain.trigger import take_pending
from lifecycle_es.errors import (
    FieldProblem,
    InvalidInput,
    InvariantViolation,
    LifecycleError,
    UnknownCampaign,
    UnknownCustomer,
)
from lifecycle_es.stores.chain import Row, canonical_id

if TYPE_CHECKING:
    from uuid import UUID

    from eventsourcing.domain import Aggregate

    from lifecycle_es.writing.application import LifecycleApplication

#: (target, external id): "customer" or "campaign", as the command's ``key`` gives it
Key = tuple[str, str]

_TARGETS = {name: cls.target for name, cls in COMMANDS.items()}

#: the events a customer keeps in memory during a large import (between this and twice as
#: many): a void of one of them needs no reading back (the demo's voids are 1 to 4 events back)
KEEP_EVENTS = 16


class ReadBack(Protocol):
    """Where an import's events can be read back while it runs (its open transaction)."""

    def events(self, aggregate_id: UUID, lte: int) -> Iterable[Any]:
        """The aggregate's events up to version ``lte``, stored before or by this import."""

    def written(self, row_id: str, version: int) -> int:
        """Up to which version the events of the aggregate (its id as rows carry it, its
        current ``version``) can be read back already."""


@dataclass
class Tally:
    """What the checked commands did (the engine's ``ImportResult`` adds up two of them)."""

    events: int = 0
    customers_created: int = 0
    campaigns_created: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class Checker:
    """Check commands in order, recording problems in ``problems`` (see module doc).

    ``store_empty`` says the store has no events, so aggregates need not be looked up;
    without ``encode``, :meth:`check` returns no rows (checking only).
    """

    def __init__(self, engine: LifecycleApplication, problems: list[FieldProblem], *,
                 store_empty: bool, encode: bool = True) -> None:
        self.engine = engine
        self.problems = problems
        self.store_empty = store_empty
        self.tally = Tally()
        self.known: dict[Key, Aggregate | None] = {}  # str hashes are cached, UUID's are not
        self._encode = encode
        self._row_ids: dict[Key, str] = {}  # the aggregates' ids as rows carry them
        self._model = engine.stage_model
        self._teams = frozenset(self._model.teams)
        self._to_row = engine.mapper.to_row  # type: ignore[attr-defined]
        #: set once the checked events can be read back: customers then keep only their last
        #: events in memory (see the module doc)
        self.read_back: ReadBack | None = None

    def check(self, line: int, cmd: Command) -> list[Row] | None:
        """Apply ``cmd`` (from ``line``); its events as rows, or None after a problem."""
        key = (cmd.target, cmd.key)
        known = self.known
        try:
            for team_field in cmd.team_fields:
                if getattr(cmd, team_field) not in self._teams:
                    cmd.check_teams(self._model.teams)  # raises, naming every unknown team
            existing = known.get(key, known)  # (the dict itself: not seen yet)
            if existing is known:
                # no snapshot once a writer process runs: it holds (or is about to hold)
                # the store's write lock, which a snapshot would wait for (SQLite)
                existing = known[key] = (None if self.store_empty else
                                         self.engine.stored_aggregate(
                                             cmd, snapshot=self.read_back is None))
            agg = cmd.apply_to(existing, self._model)  # type: ignore[arg-type]
        except (InvariantViolation, UnknownCustomer, UnknownCampaign) as exc:
            self.problems.append(_problem(exc, line))
            return None
        except InvalidInput as exc:
            self.problems.extend(FieldProblem(p.field, p.value, p.reason, line)
                                 for p in exc.problems)
            return None
        tally = self.tally
        if existing is None:  # the command created it
            known[key] = agg
            if isinstance(cmd, CampaignCommand):
                tally.campaigns_created += 1
            else:
                tally.customers_created += 1
        by_type = tally.by_type
        by_type[cmd.type] = by_type.get(cmd.type, 0) + 1
        new = take_pending(agg)
        tally.events += len(new)
        if not self._encode:
            return []
        row_id = self._row_ids.get(key)
        if row_id is None:
            row_id = self._row_ids[key] = canonical_id(agg.id)
        to_row = self._to_row
        rows = [to_row(event, row_id) for event in new]
        read_back = self.read_back
        if read_back is not None and isinstance(agg, Customer) \
                and len(agg.recent) >= 2 * KEEP_EVENTS:
            agg.rebase(KEEP_EVENTS, read_back.written(row_id, agg.version),
                       partial(read_back.events, agg.id))
        return rows

    def forget(self) -> list[CustomerSnapshot]:
        """Drop the aggregates checked so far (their events were returned as rows); returns
        the snapshots of the customers whose load would replay ``snapshot_every`` events or
        more, to write once their events are committed.

        Freeing a large import's aggregates takes about a second at 1M events; the engine
        does it while the writer process commits.
        """
        known, due, take = self.known, self.engine.snapshot_due, CustomerSnapshot.take
        snapshots = []
        while known:  # each freed as soon as its snapshot is taken
            agg = known.popitem()[1]
            if agg is not None and due(agg):
                snapshots.append(take(agg))
        self._row_ids.clear()
        return snapshots


def line_key(line: str | bytes) -> Key | None:
    """The aggregate a JSON line's command is for, as its command will name it; None when
    the line does not say clearly (it is then checked where it was read)."""
    try:
        data: Any = orjson.loads(line)
        target = _TARGETS[data["type"]]
        key = data[target]
        return (target, normalise_id(key))  # as the command's field normalises it
    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError, ValueError):
        return None


def _problem(exc: LifecycleError, line: int) -> FieldProblem:
    if isinstance(exc, InvariantViolation):
        p = exc.problem
        return FieldProblem(p.field, p.value, p.reason, line)
    if isinstance(exc, UnknownCustomer):
        return FieldProblem("customer", exc.external_id, "no such customer is registered", line)
    assert isinstance(exc, UnknownCampaign)
    return FieldProblem("campaign", exc.campaign_id, "no such campaign is announced", line)
