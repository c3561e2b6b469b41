"""The embedded engine: an ``eventsourcing`` application with one method per command.

>>> engine = LifecycleEngine("memory://")
>>> engine.register(customer="acme", at="2024-01-02T09:00:00Z", actor="ann", team="marketing",
...                 name="Acme", segment="smb", source="web")
1
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper, StoredEvent

from lifecycle_es.checker import Checker, line_key
from lifecycle_es.commands import (
    Command,
    build_command,
    parse_command,
)
from lifecycle_es.domain.campaign import Campaign
from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.ids import campaign_id, customer_id, parse_id
from lifecycle_es.domain.stage_model import CLASSIC, StageModel, load_stage_model
from lifecycle_es.domain.trigger import take_pending
from lifecycle_es.errors import (
    ConcurrencyConflict,
    FieldProblem,
    InvalidInput,
    LifecycleError,
    StoreError,
    UnknownCampaign,
    UnknownCustomer,
    first_line,
)
from lifecycle_es.gcpause import without_cyclic_gc
from lifecycle_es.logs import get_logger
from lifecycle_es.stores.bulk_write import BulkWrite, WriteFailed
from lifecycle_es.stores.codec import FastMapper, OrjsonTranscoder
from lifecycle_es.stores.faults import raised_as_faults
from lifecycle_es.stores.imports import DigestedLines, ImportRecord, file_digest
from lifecycle_es.stores.url import StoreURL

if TYPE_CHECKING:
    from lifecycle_es.audit.queries import Audit
    from lifecycle_es.checks.gaps import Gap
    from lifecycle_es.checks.health import Health
    from lifecycle_es.config import Config
    from lifecycle_es.metrics.calc import When
    from lifecycle_es.metrics.queries import Metrics
    from lifecycle_es.projection.runner import ProjectionManager

log = get_logger("lifecycle_es.engine")
T = TypeVar("T")

#: events per insert in a bulk import (and the size from which a writer process takes over)
DEFAULT_WRITE_BATCH = 25_000


@dataclass
class ImportResult:
    """What a bulk write did."""

    commands: int = 0
    events: int = 0
    customers_created: int = 0
    campaigns_created: int = 0
    seconds: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)
    #: SHA-256 of the imported bytes (imports of a file, recorded in the store), else ""
    digest: str = ""
    #: the earlier import of the same bytes when this one wrote nothing for that reason
    already_imported: ImportRecord | None = None


class LifecycleEngine(Application[UUID]):
    """Record and read customer lifecycles on a store (SQLite file, PostgreSQL, memory).

    ``store`` is a URL (``sqlite:///lifecycle.db``, ``postgresql://user@host:5432/db``,
    ``memory://``); when omitted, ``$LIFECYCLE_ES_STORE`` or ``sqlite:///lifecycle.db``.
    ``stage_model`` is a :class:`StageModel`, a preset name or a TOML path; the store
    remembers it, so later opens without one use the store's (``classic`` for a new
    store). ``projections_path`` adds folders of custom read models.
    """

    name = "lifecycle"

    def __init__(
        self,
        store: str | StoreURL | None = None,
        *,
        stage_model: StageModel | str | None = None,
        projections_path: Sequence[str] = (),
    ) -> None:
        self.store = StoreURL.parse(store)
        self.projections_path = list(projections_path)
        setup: AbstractContextManager[None] = nullcontext()
        if self.store.kind == "postgresql":
            from lifecycle_es.stores.postgres import prepared_schema

            setup = prepared_schema(self.store)
        try:
            with setup:
                super().__init__(env=self.store.eventsourcing_env())
        except LifecycleError:
            raise
        except Exception as exc:  # driver errors: never echo the URL with its password
            raise StoreError(
                f"cannot open store {self.store.redacted()}: {type(exc).__name__}: "
                f"{self.store.scrub(first_line(exc))}"
            ) from None
        self.stage_model = self._settle_stage_model(stage_model)
        log.debug("engine.opened", store=self.store.redacted(), model=self.stage_model.name)

    def construct_recorder(self) -> ApplicationRecorder:
        """The chained recorders (``stores/recorders.py``); for ``memory://`` the library's
        in-memory one plus import records."""
        if self.store.kind == "memory":
            from lifecycle_es.stores.recorders import MemoryRecorder

            return MemoryRecorder()
        return super().construct_recorder()

    def _settle_stage_model(self, given: StageModel | str | None) -> StageModel:
        """The model given (remembered by the store), else the store's, else ``classic``."""
        get = getattr(self.recorder, "get_setting", None)
        stored = get("stage_model") if get else None
        if given is None:
            return StageModel.model_validate_json(stored) if stored else CLASSIC
        model = given if isinstance(given, StageModel) else load_stage_model(given)
        dumped = model.model_dump_json()
        if get is not None and dumped != stored:
            self.recorder.put_setting("stage_model", dumped)  # type: ignore[attr-defined]
            log.info("engine.stage_model_set", model=model.name)
        return model

    def construct_mapper(self) -> Mapper[UUID]:
        """The library's mapper (cipher and compressor from the environment) with the
        project's orjson codec (``stores/codec.py``)."""
        return self.factory.mapper(transcoder=OrjsonTranscoder(), mapper_class=FastMapper)

    # ------------------------------------------------------------------ reading

    def customer(self, external_id: str) -> Customer:
        """The customer's current state (``.state``), version and events (``.log``).

        Every method taking an external id normalises it as commands do (stripped, NFC;
        see ``docs/commands.md``, "Limits"); a malformed id raises InvalidInput.
        """
        key = parse_id("customer", external_id)
        try:
            return self.repository.get(customer_id(key))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            raise UnknownCustomer(key) from None

    def campaign(self, external_id: str) -> Campaign:
        """A campaign of the shared registry."""
        key = parse_id("campaign", external_id)
        try:
            return self.repository.get(campaign_id(key))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            raise UnknownCampaign(key) from None

    def history(self, external_id: str) -> list[Customer.Event]:
        """The customer's events in order (version 1 first), voided ones included."""
        key = parse_id("customer", external_id)
        events = list(self.events.get(customer_id(key)))
        if not events:
            raise UnknownCustomer(key)
        return events  # type: ignore[return-value]

    def stored_aggregate(self, command: Command) -> Aggregate | None:
        """The recorded aggregate ``command`` targets, or None when there is none yet."""
        try:
            return self.repository.get(command.aggregate_id())  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return None

    @cached_property
    def projections(self) -> ProjectionManager:
        """Read models: ``engine.projections.catch_up()``, ``.rebuild()``, ``.status()``."""
        from lifecycle_es.projection.runner import ProjectionManager

        return ProjectionManager(self)

    @cached_property
    def audit(self) -> Audit:
        """Audit queries: ``engine.audit.timeline(...)``, ``.state(...)``, ``.events(...)``."""
        from lifecycle_es.audit.queries import Audit

        return Audit(self)

    @cached_property
    def metrics(self) -> Metrics:
        """Lifecycle metrics for any period: ``engine.metrics.summary(...)``, ``.funnel()``..."""
        from lifecycle_es.metrics.queries import Metrics

        return Metrics(self)

    def gaps(self, as_of: When | None = None, kind: str | None = None,
             team: str | None = None, *, config: Config | None = None) -> list[Gap]:
        """Customers left hanging between teams at ``as_of`` (default now); see
        :func:`lifecycle_es.checks.gaps.find_gaps`."""
        from lifecycle_es.checks.gaps import find_gaps

        with raised_as_faults(self.store):  # the read models' faults too
            return find_gaps(self, as_of, kind, team, config=config)

    def health(self, customer: str | None = None, as_of: When | None = None, *,
               config: Config | None = None) -> list[Health]:
        """Health scores with each factor's contribution; see
        :func:`lifecycle_es.checks.health.health_scores`."""
        from lifecycle_es.checks.health import health_scores

        with raised_as_faults(self.store):  # the read models' faults too
            return health_scores(self, customer, as_of, config=config)

    def close(self) -> None:
        """Close the store's connections (events and read models)."""
        if "projections" in self.__dict__:
            self.projections.read.close()
        super().close()

    # ----------------------------------------------------------------- writing

    def execute(self, command: Command) -> int:
        """Apply one validated command and save it; returns the aggregate's new version.

        Raises :class:`InvalidInput`, :class:`InvariantViolation`, :class:`UnknownCustomer`
        or :class:`ConcurrencyConflict`; in every case nothing was written.
        """
        started = time.perf_counter()
        outcome = "error"
        try:
            command.check_teams(self.stage_model.teams)
            agg = command.apply_to(self.stored_aggregate(command), self.stage_model)
            self._write_events(take_pending(agg))
            outcome = "ok"
            return agg.version
        except LifecycleError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            log.info(
                "command", command=command.type, key=command.key, outcome=outcome,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )

    def record(self, type_: str, **fields: Any) -> int:
        """Validate and execute command ``type_`` (a JSON Lines type name) from keywords."""
        return self.execute(build_command(type_, fields))

    # One method per command; the keyword arguments are the command's fields
    # (see lifecycle_es.commands and docs/commands.md).
    def register(self, **f: Any) -> int:
        return self.record("customer_registered", **f)

    def touchpoint(self, **f: Any) -> int:
        return self.record("touchpoint", **f)

    def change_stage(self, **f: Any) -> int:
        return self.record("stage_changed", **f)

    def assign_owner(self, **f: Any) -> int:
        return self.record("owner_assigned", **f)

    def release_owner(self, **f: Any) -> int:
        return self.record("owner_released", **f)

    def send_handover(self, **f: Any) -> int:
        return self.record("handover_sent", **f)

    def accept_handover(self, **f: Any) -> int:
        return self.record("handover_accepted", **f)

    def reject_handover(self, **f: Any) -> int:
        return self.record("handover_rejected", **f)

    def purchase(self, **f: Any) -> int:
        return self.record("purchase", **f)

    def payment(self, **f: Any) -> int:
        return self.record("payment", **f)

    def renewal(self, **f: Any) -> int:
        return self.record("renewal", **f)

    def expansion(self, **f: Any) -> int:
        return self.record("expansion", **f)

    def contraction(self, **f: Any) -> int:
        return self.record("contraction", **f)

    def churn(self, **f: Any) -> int:
        return self.record("churned", **f)

    def win_back(self, **f: Any) -> int:
        return self.record("won_back", **f)

    def nps_answer(self, **f: Any) -> int:
        return self.record("nps_answer", **f)

    def csat_answer(self, **f: Any) -> int:
        return self.record("csat_answer", **f)

    def check_in(self, **f: Any) -> int:
        return self.record("check_in", **f)

    def request_advocacy(self, **f: Any) -> int:
        return self.record("advocacy_requested", **f)

    def give_advocacy(self, **f: Any) -> int:
        return self.record("advocacy_given", **f)

    def void_event(self, **f: Any) -> int:
        return self.record("event_voided", **f)

    def announce_campaign(self, **f: Any) -> int:
        return self.record("campaign_announced", **f)

    def amend_campaign(self, **f: Any) -> int:
        return self.record("campaign_amended", **f)

    def end_campaign(self, **f: Any) -> int:
        return self.record("campaign_ended", **f)

    # ------------------------------------------------------------- bulk writes

    def import_file(
        self, path: str | os.PathLike[str], *, batch_size: int = DEFAULT_WRITE_BATCH
    ) -> ImportResult:
        """Import a JSON Lines file (``"-"``: stdin) once, all or nothing.

        The store records the import (SHA-256 of the bytes, lines, events, time) in the same
        transaction as its events. If the same bytes were imported before, nothing is written
        and ``result.already_imported`` says when; a file is looked up before it is read,
        stdin once it is read to its end. See :meth:`import_lines` (``once=True``).
        """
        path = os.fspath(path)
        if path != "-":
            previous = self.find_import(file_digest(path))
            if previous is not None:
                log.info("import.already_imported", digest=previous.digest)
                return ImportResult(digest=previous.digest, already_imported=previous)
        return self.import_lines(iter_jsonl(path), batch_size=batch_size, once=True)

    def find_import(self, digest: str) -> ImportRecord | None:
        """The committed import of the bytes with this SHA-256 (hex), or None."""
        return self.recorder.find_import(digest)  # type: ignore[attr-defined, no-any-return]

    @without_cyclic_gc
    def import_lines(
        self, lines: Iterable[str | bytes], *, batch_size: int = DEFAULT_WRITE_BATCH,
        once: bool = False,
    ) -> ImportResult:
        """Import JSON Lines commands, all or nothing (see :meth:`record_many`).

        With ``once``, the lines' bytes (``str`` lines as UTF-8) are digested as they are
        read: if the store recorded an import of the same bytes, nothing is written and
        ``result.already_imported`` is that record; else this import is recorded with its
        events (:meth:`import_file` does this for a file).

        Once a writer process runs, it also checks the lines of a share of the customers and
        campaigns not seen before (``stores/bulk_write.py``).
        """
        source = DigestedLines(lines) if once else None
        if source is not None:
            lines = source
        problems: list[FieldProblem] = []
        checker = Checker(self, problems, store_empty=self._store_empty())
        out = BulkWrite(self, batch_size, store_empty=checker.store_empty)
        known = checker.known

        def parsed() -> Iterator[tuple[int, Command]]:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                if out.shares_checking:
                    key = line_key(line)
                    if key is not None and key not in known and out.route(number, line, key):
                        continue
                try:
                    yield number, parse_command(line, number)
                except InvalidInput as exc:  # reported with the rules' problems, in line order
                    problems.extend(exc.problems)

        return self._check_and_write(parsed(), checker, out, check_only=False, source=source)

    @without_cyclic_gc
    def record_many(
        self,
        commands: Iterable[tuple[int, Command]] | Iterable[Command],
        *,
        batch_size: int = DEFAULT_WRITE_BATCH,
        check_only: bool = False,
    ) -> ImportResult:
        """Apply many commands in order and write them all in one transaction, or nothing.

        Every command is checked against the state left by the ones before it; any
        problem raises :class:`InvalidInput` listing all of them (with line numbers) and
        nothing is written. The events are written in order, ``batch_size`` per insert, by a
        second process while checking goes on once over half a batch is queued
        (``stores/bulk_write.py``); they are committed only after the last command passed.
        A storage failure or a concurrent writer on the same aggregates raises
        :class:`StoreError` and also writes nothing. ``check_only`` validates without writing.
        """
        numbered = (item if isinstance(item, tuple) else (number, item)
                    for number, item in enumerate(commands, start=1))
        checker = Checker(self, [], store_empty=self._store_empty(), encode=not check_only)
        out = BulkWrite(self, batch_size, store_empty=checker.store_empty)
        return self._check_and_write(numbered, checker, out, check_only=check_only)

    def _store_empty(self) -> bool:
        return self.recorder.max_notification_id() in (None, 0)

    def _check_and_write(
        self,
        commands: Iterable[tuple[int, Command]],
        checker: Checker,
        out: BulkWrite,
        *,
        check_only: bool,
        source: DigestedLines | None = None,
    ) -> ImportResult:
        """Check ``commands`` and write their events (see :meth:`record_many`).

        ``checker.problems`` may already hold problems (and grow while ``commands`` is
        consumed). With ``source`` (the digested lines of ``commands``) the import is
        recorded, or is a no-op if the same bytes were.
        """
        started = time.perf_counter()
        problems = checker.problems
        check = checker.check
        try:
            for line, cmd in commands:
                rows = check(line, cmd)
                if problems:
                    out.discard()  # nothing will be written: stop writing early
                elif rows is not None and not check_only:
                    out.add(line, rows)
            tallies = [checker.tally]
            writer_tally = out.finish(problems)
            if writer_tally is not None:
                tallies.append(writer_tally)
            record = None
            if source is not None:
                previous = self.find_import(source.digest)
                if previous is not None:  # its lines were checked against themselves
                    log.info("import.already_imported", digest=previous.digest)
                    return ImportResult(digest=previous.digest, already_imported=previous)
                record = ImportRecord(source.digest, source.count,
                                      sum(t.events for t in tallies), datetime.now(UTC))
            if problems:
                problems.sort(key=lambda p: p.line or 0)
                raise InvalidInput(problems, "import (nothing written)")
            if not check_only:
                out.commit(checker.forget, record)
        except WriteFailed as exc:
            log.error("import.failed", error=str(exc), conflict=exc.conflict)
            raise StoreError(f"import failed, nothing written: {exc}") from None
        finally:
            out.abort()  # after a commit: nothing left to drop
        result = ImportResult(seconds=time.perf_counter() - started,
                              digest=source.digest if source is not None else "")
        for tally in tallies:
            result.events += tally.events
            result.customers_created += tally.customers_created
            result.campaigns_created += tally.campaigns_created
            for type_, n in tally.by_type.items():
                result.by_type[type_] = result.by_type.get(type_, 0) + n
        result.commands = sum(result.by_type.values())
        if not check_only:
            log.info("import", commands=result.commands, events=result.events,
                     seconds=round(result.seconds, 3))
        return result

    # ---------------------------------------------------------------- internals

    def _write_events(self, events: Sequence[Any]) -> None:
        """Write events in one transaction; a version clash becomes ConcurrencyConflict."""
        if not events:
            return
        stored: list[StoredEvent] = [self.mapper.to_stored_event(e) for e in events]
        try:
            self.recorder.insert_events(stored)
        except IntegrityError:
            first = events[0]
            key = getattr(first, "customer", None) or getattr(first, "campaign", "?")
            raise ConcurrencyConflict(f"{type(first).__qualname__.split('.')[0].lower()} "
                                      f"{key!r}") from None


#: seconds :func:`retry_on_conflict` goes on retrying by default: 16 writers x 100 commands
#: on the same 5 customers took up to 8.5 s for one command on a loaded 2-core machine
RETRY_BUDGET = 30.0
#: the longest pause between two tries of :func:`retry_on_conflict` (longer pauses starve
#: the unlucky: the others win meanwhile)
RETRY_MAX_PAUSE = 0.05


def retry_on_conflict(
    func: Callable[..., T], *args: Any, budget: float = RETRY_BUDGET,
    attempts: int | None = None, backoff: float = 0.005, **kwargs: Any,
) -> T:
    """Call ``func`` and retry it on :class:`ConcurrencyConflict` (reloading is up to ``func``).

    Retries go on for ``budget`` seconds (and at most ``attempts`` calls, if given), after a
    pause drawn at random up to ``backoff * 2**tries``, capped at :data:`RETRY_MAX_PAUSE`
    (jitter spreads the racers). When the budget or the tries run out, the last
    :class:`ConcurrencyConflict` is raised. Engine command methods reload the aggregate on
    every call, so ``retry_on_conflict(engine.payment, customer=..., ...)`` is safe.
    """
    deadline = time.monotonic() + budget
    tries = 0
    while True:
        tries += 1
        try:
            return func(*args, **kwargs)
        except ConcurrencyConflict:
            pause = random.uniform(0, min(RETRY_MAX_PAUSE, backoff * 2 ** tries))
            if (attempts is not None and tries >= attempts) or \
                    time.monotonic() + pause >= deadline:
                log.info("retry_on_conflict.gave_up", tries=tries, budget=budget)
                raise
            time.sleep(pause)


def iter_jsonl(path: str) -> Iterator[bytes]:
    """Lines of a JSON Lines file, or of stdin for ``-``."""
    import sys

    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as fh:
        yield from fh
