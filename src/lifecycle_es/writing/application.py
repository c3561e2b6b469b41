"""The write side's application service: the ``eventsourcing`` Application that records commands.

It opens the store, settles the stage model, loads aggregates, applies one validated command
and saves its events (``execute``); one typed method per command (``register``, ``purchase``,
...; ``writing/command_methods.py``) takes the command's fields as keywords. Bulk writes are
in ``writing/bulk_import.py``.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    IntegrityError,
    Mapper,
    PersistenceError,
)

from lifecycle_es.commands import Command, build_command, build_erasure, build_model_change
from lifecycle_es.domain.campaign import Campaign
from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.customer_snapshot import CustomerSnapshot
from lifecycle_es.domain.ids import campaign_id, customer_id, parse_id
from lifecycle_es.domain.stage_model import CLASSIC, StageModel, load_stage_model
from lifecycle_es.domain.token import ApiToken, name_of, token_id
from lifecycle_es.domain.user import User, password_matches, user_id
from lifecycle_es.errors import (
    ConcurrencyConflict,
    ConfigError,
    InvariantViolation,
    LifecycleError,
    MasterKeyError,
    StoreError,
    UnknownCampaign,
    UnknownCustomer,
    first_line,
)
from lifecycle_es.logs import get_logger
from lifecycle_es.stores.chain import canonical_id, changed_by
from lifecycle_es.stores.codec import FastMapper, OrjsonTranscoder
from lifecycle_es.stores.event_log import EventLog
from lifecycle_es.stores.keys import Keyring
from lifecycle_es.stores.master_key import MasterKey, configured_master_key
from lifecycle_es.stores.url import StoreURL
from lifecycle_es.writing.command_methods import CommandMethods
from lifecycle_es.writing.repository import CustomerRepository
from lifecycle_es.writing.stage_model_change import (
    ModelChange,
    check_mapping,
    move,
    stage_events,
    stranded,
)

log = get_logger("lifecycle_es.writing")

#: a customer is snapshotted every this many events by default (docs/evolution.md)
DEFAULT_SNAPSHOT_EVERY = 100
SNAPSHOT_ENV = "LIFECYCLE_ES_SNAPSHOT_EVERY"
MAX_SNAPSHOT_EVERY = 1_000_000
#: snapshots written per transaction after a bulk write
SNAPSHOT_BATCH = 1_000
#: events written by a bulk write from which the event store's tables are analyzed (when
#: they grew by a tenth or more; PostgreSQL)
ANALYZE_AFTER = 10_000
#: the store's setting holding its stage model (``lifecycle_settings``)
STAGE_MODEL_KEY = "stage_model"


def snapshot_interval(given: int | None) -> int:
    """The snapshot interval: ``given``, else ``$LIFECYCLE_ES_SNAPSHOT_EVERY``, else
    :data:`DEFAULT_SNAPSHOT_EVERY`; 0 turns snapshots off."""
    raw: object = given if given is not None else os.environ.get(SNAPSHOT_ENV, "").strip() \
        or DEFAULT_SNAPSHOT_EVERY
    text = str(raw)
    if isinstance(raw, bool) or not (text.isascii() and text.isdigit()) \
            or int(text) > MAX_SNAPSHOT_EVERY:
        where = "snapshot_every" if given is not None else f"${SNAPSHOT_ENV}"
        raise ConfigError(f"{where}={text[:20]!r}: a whole number of events from 0 (no "
                          f"snapshots) to {MAX_SNAPSHOT_EVERY:,} expected")
    return int(text)


class LifecycleApplication(CommandMethods, Application[UUID]):
    """Record customer lifecycles on a store (SQLite file, PostgreSQL, memory).

    ``store`` is a URL (``sqlite:///lifecycle.db``, ``postgresql://user@host:5432/db``,
    ``memory://``); when omitted, ``$LIFECYCLE_ES_STORE`` or ``sqlite:///lifecycle.db``.
    ``stage_model`` is a :class:`StageModel`, a preset name or a TOML path; the store
    remembers it, so later opens without one use the store's (``classic`` for a new
    store). ``projections_path`` adds folders of custom read models. Personal fields are
    encrypted under each customer's key, wrapped by the configured master key
    (docs/privacy.md); ``encrypt=False`` stores them as given (for data without personal
    fields, and to measure the cost).
    """

    name = "lifecycle"

    def __init__(
        self,
        store: str | StoreURL | None = None,
        *,
        stage_model: StageModel | str | None = None,
        projections_path: Sequence[str] = (),
        encrypt: bool = True,
        create: bool = True,
        snapshot_every: int | None = None,
    ) -> None:
        self.store = StoreURL.parse(store)
        self.encrypt = encrypt
        self.snapshot_every = snapshot_interval(snapshot_every)
        self._create = create and not self.store.read_only  # never DDL on a read-only store
        self.snapshotting_intervals = (  # type: ignore[misc]  # per engine, not per class
            {Customer: self.snapshot_every} if self.snapshot_every else {})
        self.projections_path = list(projections_path)
        if isinstance(stage_model, str):  # a bad model file fails before any store is made
            stage_model = load_stage_model(stage_model)
        setup: AbstractContextManager[None] = nullcontext()
        if not create:
            from lifecycle_es.stores.postgres import require_existing

            require_existing(self.store, f"{self.name.lower()}_events")
        elif self.store.kind == "postgresql":
            from lifecycle_es.stores.postgres import prepared_schema

            setup = prepared_schema(self.store)
        elif self.store.kind == "sqlite" and self._create and self.store.path != ":memory:":
            from lifecycle_es.stores.private_files import create_private

            self.store.eventsourcing_env()  # a missing folder is refused before the file
            create_private(self.store.path)  # 0600, and so its -wal and -shm
        try:
            with setup:
                super().__init__(env={
                    **self.store.eventsourcing_env(),
                    "IS_SNAPSHOTTING_ENABLED": "y" if self.snapshot_every else "n"})
        except LifecycleError:
            raise
        except Exception as exc:  # driver errors: never echo the URL with its password
            raise StoreError(
                f"cannot open store {self.store.redacted()}: {type(exc).__name__}: "
                f"{self.store.scrub(first_line(exc))}"
            ) from None
        self.keyring = self._open_keyring() if encrypt else None
        self.stage_model = self._settle_stage_model(stage_model)
        if (opened := getattr(self.recorder, "opened", None)) is not None:
            opened()  # what the opening read serves no later call
        log.debug("engine.opened", store=self.store.redacted(), model=self.stage_model.name)

    def construct_recorder(self) -> ApplicationRecorder:
        """The chained recorders (``stores/recorders.py``); for ``memory://`` the library's
        in-memory one plus import records."""
        if self.store.kind == "memory":
            from lifecycle_es.stores.recorders import MemoryRecorder

            return MemoryRecorder()
        return super().construct_recorder()

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """The library's snapshot store on the store's snapshot table
        (``stores/snapshot_table.py``); a store opened only to read (``create=False``)
        without that table gets none and replays its customers."""
        from lifecycle_es.stores.snapshot_table import snapshot_recorder  # (the drivers')

        recorder = snapshot_recorder(self.factory, getattr(self.recorder, "store", self.store),
                                     create=self._create,
                                     known=getattr(self.recorder, "tables", None))
        if recorder is None:
            self.snapshotting_intervals = {}  # type: ignore[misc]
            return None  # type: ignore[return-value]
        return self.factory.event_store(mapper=self.mapper, recorder=recorder)

    def construct_repository(self) -> Repository[UUID]:
        """The library's repository, loading customers from snapshot + tail
        (``writing/repository.py``)."""
        return CustomerRepository(self.events, snapshot_store=self.snapshots)

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None,
                      projector_func: Any = None) -> None:
        """The library's snapshotting after a save, for customers only, and never failing
        the save: a snapshot is a cache (one another process wrote first, or one that
        cannot be written now, is skipped)."""
        try:
            agg: Any = self.repository.get(aggregate_id, version=version)
        except (PersistenceError, LifecycleError) as exc:
            log.debug("snapshot.skipped", aggregate=str(aggregate_id), version=version,
                      reason=type(exc).__name__)
            return
        if isinstance(agg, Customer):
            self._snapshot(agg)

    def _snapshot(self, agg: Customer) -> None:
        if self.put_snapshots([CustomerSnapshot.take(agg)]):
            agg.origin.snapshot = agg.version

    def analyze(self, written: int) -> None:
        """After a bulk write of ``written`` events on PostgreSQL: give the planner
        statistics of the event store's tables when they grew by a tenth or more (as
        autovacuum would, later). Never fails: the write is committed already."""
        analyze = getattr(self.recorder, "analyze", None)
        if analyze is None or written < ANALYZE_AFTER:
            return
        try:
            if written * 10 < (self.recorder.max_notification_id() or 0):
                return
            started = time.perf_counter()
            snapshots = self.snapshots
            analyze(*([] if snapshots is None else
                      [getattr(snapshots.recorder, "events_table_name", "")]))
            log.info("store.analyzed", events=written,
                     seconds=round(time.perf_counter() - started, 3))
        except Exception as exc:  # statistics are an optimisation
            log.warning("store.analyze_failed", error=self.store.scrub(first_line(exc)))

    def snapshot_due(self, agg: Aggregate) -> bool:
        """Whether ``agg`` is a customer whose load would fold ``snapshot_every`` events or
        more (snapshots on)."""
        return bool(self.snapshot_every) and isinstance(agg, Customer) \
            and agg.unsnapshotted >= self.snapshot_every

    def put_snapshots(self, snapshots: Sequence[CustomerSnapshot]) -> int:
        """Write ``snapshots`` (a bulk write's, once committed) in transactions of
        :data:`SNAPSHOT_BATCH`; returns how many were written. A snapshot is a cache: a
        batch that cannot be written (one another process wrote first, a lock held too
        long) ends it, and those customers are snapshotted at their next load."""
        done = 0
        if self.snapshots is None:
            return done
        for start in range(0, len(snapshots), SNAPSHOT_BATCH):
            batch = snapshots[start:start + SNAPSHOT_BATCH]
            try:
                self.snapshots.put(batch)
            except (PersistenceError, LifecycleError) as exc:  # IntegrityError included
                log.debug("snapshot.skipped", aggregate=str(batch[0].originator_id),
                          version=batch[0].originator_version, snapshots=len(batch),
                          reason=type(exc).__name__)
                break
            done += len(batch)
        return done

    def _open_keyring(self) -> Keyring:
        """The store's data keys under the configured master key (``stores/master_key.py``),
        given to the codec and the recorder; a new store records the key's fingerprint. A
        store whose fingerprint row is gone but which holds data keys records none: the
        configured key must open them (else MasterKeyError), and ``audit verify`` reports
        the missing row."""
        recorder: Any = self.recorder
        if self.store.kind == "memory":
            master = MasterKey.generate("the memory store's own key")
        else:
            stored = recorder.master_fingerprint()
            live = None if stored is not None else _a_live_key(recorder)
            master = configured_master_key(stored_fingerprint=stored, new=live is None)
            if live is not None:
                _must_open(Keyring(master, recorder), *live)
            elif stored is None and not self.store.read_only:
                # a new store (or one from before encryption): record the key's fingerprint
                claimed = recorder.claim_master_fingerprint(master.fingerprint)
                if claimed != master.fingerprint:  # another process recorded its key first
                    configured_master_key(stored_fingerprint=claimed)  # raises, saying so
        keyring = Keyring(master, recorder)
        recorder.keyring = keyring
        self.mapper.keyring = keyring  # type: ignore[attr-defined]
        return keyring

    def _settle_stage_model(self, given: StageModel | str | None) -> StageModel:
        """The store's model (``classic`` when it has none); a model given must be the
        same. Only a new store (nothing recorded) opened to write records the one given:
        opening never changes a store's model (that is :meth:`set_stage_model`)."""
        stored = self._stored_stage_model()
        if given is None:
            return stored or CLASSIC
        model = given if isinstance(given, StageModel) else load_stage_model(given)
        get = getattr(self.recorder, "get_setting", None)
        if stored is None and get is not None and self.recorder.max_notification_id():
            stored = CLASSIC  # a store written before its model was remembered
        if stored is not None and model != stored:
            raise ConfigError(
                f"stage_model={model.name!r} was given, but store {self.store.redacted()} "
                f"uses stage model {stored.name!r}"
                f"{' (same name, other content)' if stored.name == model.name else ''}: "
                "leave the model out to use the store's, or change the store's model on "
                "purpose with `lifecycle-es stage-model set NAME|FILE` "
                "(engine.set_stage_model; docs/stage-model.md)")
        if stored is None and get is not None and self._create:
            self.recorder.put_setting(STAGE_MODEL_KEY,  # type: ignore[attr-defined]
                                      model.model_dump_json())
            log.info("engine.stage_model_recorded", model=model.name)
        return model

    def _stored_stage_model(self) -> StageModel | None:
        get = getattr(self.recorder, "get_setting", None)
        stored = get(STAGE_MODEL_KEY) if get else None
        return StageModel.model_validate_json(stored) if stored else None

    def set_stage_model(self, model: StageModel | str, *,
                        mapping: Mapping[str, str] | None = None,
                        actor: str | None = None) -> ModelChange:
        """Change the store's stage model to ``model`` (a :class:`StageModel`, preset name
        or TOML path), recorded in the settings chain as changed by ``actor`` (default:
        the OS user).

        Refused (InvariantViolation, naming the stages) when customers sit in stages
        ``model`` lacks, unless ``mapping`` sends each such stage to one of ``model``'s:
        their ``stage_changed`` events are then recorded (one transaction) before the
        model changes. Running it again after an interruption completes the change; the
        same model again changes nothing.
        """
        if self.store.read_only:
            raise StoreError(f"store {self.store.redacted()} is opened read only: its stage "
                             "model cannot change")
        new = model if isinstance(model, StageModel) else load_stage_model(model)
        request = build_model_change({"actor": actor if actor is not None else getpass.getuser(),
                                      "mapping": dict(mapping or {})})
        previous = self.stage_model
        customers = stranded(stage_events(self.event_log), self.customer, new)
        check_mapping(request.mapping, new, customers)
        moved: dict[str, tuple[str, str]] = {}
        if customers:
            now = datetime.now(UTC)
            moved = move(customers, request.mapping, new, lambda team: {
                "occurred_at": now, "actor": request.actor, "team": team,
                "correlation_id": None, "causation_id": None}, previous.name)
            self._save(*customers.values())
        stored = self._stored_stage_model()
        put = getattr(self.recorder, "put_setting", None)
        current = previous if put is None else stored or CLASSIC  # memory:// stores none
        changed = new != current
        if changed and put is not None:
            put(STAGE_MODEL_KEY, new.model_dump_json(), changed_by(request.actor))
        self.stage_model = new
        log.info("engine.stage_model_changed", previous=previous.name, model=new.name,
                 changed=changed, moved=len(moved), actor=request.actor)
        return ModelChange(previous.name, new.name, changed, moved)

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

    def stored_aggregate(self, command: Command, *, snapshot: bool = True) -> Aggregate | None:
        """The recorded aggregate ``command`` targets, or None when there is none yet. A
        customer loaded by folding ``snapshot_every`` events or more (written by an import,
        or after a void older than its snapshot) is snapshotted first, unless ``snapshot``
        is false (a bulk import whose writer process holds the store's write lock)."""
        try:
            agg: Aggregate = self.repository.get(command.aggregate_id())
        except AggregateNotFoundError:
            return None
        if snapshot and self.snapshot_due(agg):
            self._snapshot(agg)  # type: ignore[arg-type]  # (a customer)
        return agg

    @property
    def event_log(self) -> EventLog:
        """The event log as the read side reads it (``stores/event_log.py``)."""
        return EventLog(self.recorder, self.mapper, self.events)

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
            self._save(agg)
            if isinstance(agg, Customer) and isinstance(agg.recent[-1], Customer.EventVoided) \
                    and self.snapshot_every and agg.version >= self.snapshot_every:
                self._snapshot(agg)  # loads need not replay the whole history again
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

    def erase(self, *, customer: str, reason: str, actor: str | None = None) -> int:
        """Erase the customer's personal data: delete its data key and record who erased
        it, when and why, in one transaction; returns the erasure event's version.

        Afterwards its personal fields read as placeholders everywhere (docs/privacy.md);
        commands on it are refused. Refused for a customer with events written before
        encryption was enabled (their personal fields are in clear).
        """
        request = build_erasure({"customer": customer, "reason": reason,
                                 "actor": actor if actor is not None else getpass.getuser()})
        key = request.customer
        c = self.customer(key)
        if self.keyring is None:
            raise StoreError("this engine was opened with encrypt=False: it cannot erase")
        plain = [e.originator_version for e in self.event_log.stored(c.id)
                 if self.mapper.has_plain_personal(e.topic, e.state)]  # type: ignore[attr-defined]
        if plain:
            raise InvariantViolation(
                "customer", key,
                f"{len(plain)} of its events (the first: version {plain[0]}) hold personal "
                "data in clear, written before encryption was enabled; erasure cannot reach "
                "them (docs/privacy.md, 'Stores written before encryption')")
        c.erase(request.reason, request.meta(datetime.now(UTC)))
        aggregate_id = canonical_id(c.id)
        self.keyring.erase(aggregate_id)
        try:
            self._save(c)
        finally:
            self.keyring.cancel(aggregate_id)  # a no-op once written
        log.info("customer.erased", key=key, actor=request.actor)
        return c.version

    def rotate_master_key(self, new: MasterKey) -> int:
        """Re-wrap every data key under ``new`` (one transaction; events untouched);
        returns the number of keys. Configure ``new`` for every process afterwards."""
        if self.keyring is None:
            raise StoreError("this engine was opened with encrypt=False: it has no keys")
        keyring = self.keyring
        old = keyring.master.fingerprint
        count: int = self.recorder.rewrap_keys(  # type: ignore[attr-defined]
            lambda aid, wrapped: keyring.wrap(aid, keyring.unwrap(aid, wrapped), new),
            old, new.fingerprint)
        log.info("keys.rotated", old=old, new=new.fingerprint, keys=count)
        return count

    def record(self, type_: str, **fields: Any) -> int:
        """Validate and execute command ``type_`` (a JSON Lines type name) from keywords."""
        return self.execute(build_command(type_, fields))

    # ------------------------------------------------------------------- users
    # The people of the web console (``domain/user.py``); the actor and team are the
    # administrator's. ``password_hash`` comes from ``domain.user.hash_password``.
    def user(self, name: str) -> User:
        """A user of the console (InvariantViolation when there is none)."""
        key = parse_id("user", name)
        try:
            return self.repository.get(user_id(key))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            raise InvariantViolation("user", key, "no such user") from None

    def authenticate(self, name: str, password: str) -> User | None:
        """The active user ``name`` when ``password`` is theirs, else None (an unknown name
        takes as long as a wrong password; nothing says which it was)."""
        try:
            found: User | None = self.user(name)
        except LifecycleError:
            found = None
        ok = password_matches(found.password_hash if found else None, password)
        return found if ok and found is not None and found.active else None

    # ------------------------------------------------------------------ API tokens
    # The integrations of the HTTP API (``domain/token.py``); the actor and team are the
    # administrator's. ``token_hash`` comes from ``domain.token.token_hash``.
    def token(self, name: str) -> ApiToken:
        """An API token (InvariantViolation when there is none)."""
        try:
            return self.repository.get(token_id(name))  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            raise InvariantViolation("token", name, "no such token") from None

    def token_for(self, token: str) -> ApiToken | None:
        """The active API token whose secret is ``token``, else None (malformed, unknown,
        wrong or revoked: nothing says which)."""
        name = name_of(token)
        if name is None:
            return None
        try:
            found = self.token(name)
        except LifecycleError:
            return None
        return found if found.matches(token) else None

    # ---------------------------------------------------------------- internals

    def _write_events(self, events: Sequence[Any]) -> None:
        """Write these events in one transaction (see :meth:`_save`)."""
        if events:
            self._save(*events)

    def _save(self, *objs: Any) -> None:
        """Save aggregates' pending events (or events) in one transaction through the
        library's ``save``, its snapshotting and notification hooks included; a version clash
        becomes :class:`ConcurrencyConflict`."""
        first = objs[0].pending_events[0] if isinstance(objs[0], Aggregate) else objs[0]
        try:
            self.save(*objs)
        except IntegrityError:
            key = getattr(first, "customer", None) or getattr(first, "campaign", None) \
                or getattr(first, "user", None) or getattr(first, "token", "?")
            kind = type(first).__qualname__.split(".")[0].lower()
            raise ConcurrencyConflict(f"{kind} {key!r}") from None


def _a_live_key(recorder: Any, page: int = 256) -> tuple[str, bytes] | None:
    """A data key of the store that is not erased (aggregate id, wrapped), or None."""
    start, skip = "", 0
    while True:
        rows = recorder.select_keys(start, page + skip)[skip:]
        for aid, wrapped in rows:
            if wrapped is not None:
                return str(aid), bytes(wrapped)
        if len(rows) < page:
            return None
        start, skip = rows[-1][0], 1  # from the last row read on, without it


def _must_open(keyring: Keyring, aggregate_id: str, wrapped: bytes) -> None:
    """Refuse a master key that does not open the store's data keys (whose fingerprint row
    is gone): new keys wrapped under it would leave the store readable by no one key."""
    try:
        keyring.unwrap(aggregate_id, wrapped)
    except MasterKeyError:
        raise MasterKeyError(
            f"the store holds data keys but its master key's fingerprint "
            f"(lifecycle_master_key) is gone, and the master key from "
            f"{keyring.master.source} ({keyring.master.fingerprint}) does not open them: "
            "configure the store's key (docs/privacy.md, 'Tamper evidence of the keys')"
        ) from None
