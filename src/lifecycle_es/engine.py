"""The facade users and entrypoints hold: one engine over the write side, the read side and the
queries that :func:`lifecycle_es.bootstrap.bootstrap` builds on one store.

>>> engine = LifecycleEngine("memory://")
>>> engine.register(customer="acme", at="2024-01-02T09:00:00Z", actor="ann", team="marketing",
...                 name="Acme", segment="smb", source="web")
1

The facade holds its parts (composition, not inheritance) and adds no rule of its own: each
command method is the write side's (``lifecycle_es.writing``), each query the read side's
(``lifecycle_es.reading``). This module is also the public API of the entrypoints (the CLI, the
report, the demo, a web console): what they need of the parts is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property, partial, wraps
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar, overload

from lifecycle_es.bootstrap import ReadSide, bootstrap, queries_store
from lifecycle_es.domain.stage_model import StageModel
from lifecycle_es.errors import StoreError
from lifecycle_es.logs import get_logger
from lifecycle_es.notifying.config import ENV_VAR as NOTIFICATIONS_ENV_VAR
from lifecycle_es.notifying.config import load_notifications
from lifecycle_es.reading.projection.freshness import Freshness, freshness
from lifecycle_es.reading.projection.parallel import default_jobs
from lifecycle_es.reading.projection.runner import (
    DEFAULT_BATCH,
    Failure,
    ProjectionFailed,
    ProjectionManager,
)
from lifecycle_es.stores.event_log import EventLog
from lifecycle_es.stores.master_key import (
    KEY_ENV_VAR,
    KEY_FILE_ENV_VAR,
    MasterKey,
    new_master_key_text,
    read_key_file,
)
from lifecycle_es.stores.private_files import write_private
from lifecycle_es.stores.url import ENV_VAR as STORE_ENV_VAR
from lifecycle_es.stores.url import StoreURL, redact
from lifecycle_es.writing.bulk_import import (
    DEFAULT_WRITE_BATCH,
    BulkImportApplication,
    ImportConflict,
    ImportResult,
    Recorded,
    RequestResult,
    iter_jsonl,
)
from lifecycle_es.writing.retry import retry_on_conflict
from lifecycle_es.writing.stage_model_change import ModelChange

if TYPE_CHECKING:  # the queries are imported when first used
    from lifecycle_es.commands import Command
    from lifecycle_es.config import Config
    from lifecycle_es.notifying.config import Notifications
    from lifecycle_es.notifying.sender import Notifier
    from lifecycle_es.notifying.thread import NotifierThread
    from lifecycle_es.reading.audit.queries import Audit
    from lifecycle_es.reading.audit.verify import VerifyReport
    from lifecycle_es.reading.lifecycle_checks.facts import CustomerFacts
    from lifecycle_es.reading.lifecycle_checks.gaps import Gap
    from lifecycle_es.reading.lifecycle_checks.health import Health
    from lifecycle_es.reading.metrics.calc import When
    from lifecycle_es.reading.metrics.queries import Metrics
    from lifecycle_es.reading.prediction.results import Prediction

log = get_logger("lifecycle_es.writing")


def store_fault(exc: BaseException, store: StoreURL) -> StoreError | None:
    """``exc`` as the one-line store fault it is when a database driver raised it (what the
    stores say of a lock, a full disk, a read-only session...), else None. The drivers are
    imported only here, when a fault is looked at (the CLI starts without them)."""
    from lifecycle_es.stores.faults import DRIVER_ERRORS, fault

    return fault(exc, store) if isinstance(exc, DRIVER_ERRORS) else None

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_WRITE_BATCH",
    "KEY_ENV_VAR",
    "KEY_FILE_ENV_VAR",
    "NOTIFICATIONS_ENV_VAR",
    "STORE_ENV_VAR",
    "Failure",
    "Freshness",
    "ImportConflict",
    "ImportResult",
    "LifecycleEngine",
    "MasterKey",
    "ProjectionFailed",
    "ProjectionManager",
    "Recorded",
    "RequestResult",
    "StoreURL",
    "default_jobs",
    "freshness",
    "iter_jsonl",
    "load_notifications",
    "new_master_key_text",
    "read_key_file",
    "redact",
    "retry_on_conflict",
    "store_fault",
    "write_private",
]

P = ParamSpec("P")
R = TypeVar("R")


@overload
def _writes(method: Callable[Concatenate[BulkImportApplication, P], R],
            ) -> Callable[Concatenate[LifecycleEngine, P], R]: ...
@overload
def _writes(method: Callable[..., R]) -> Callable[..., R]: ...
def _writes(method: Callable[..., R]) -> Callable[..., R]:
    """The write side's ``method`` as the facade's: the same parameters, types and docstring
    (a method taking ``**fields`` cannot be typed as one with a leading ``self`` by mypy:
    the second form keeps its ``Any`` keywords)."""

    @wraps(method)
    def delegate(self: LifecycleEngine, /, *args: Any, **kwargs: Any) -> R:
        return method(self.writer, *args, **kwargs)

    return delegate


def _writes_in_bulk(method: Callable[Concatenate[BulkImportApplication, P], R],
                    ) -> Callable[Concatenate[LifecycleEngine, P], R]:
    """A bulk write of the write side as the facade's, within the connection budget: the
    read models' connection is set aside while it runs (:meth:`ReadSide.room_for_a_writer`)."""

    @wraps(method)
    def delegate(self: LifecycleEngine, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._read.room_for_a_writer():
            return method(self.writer, *args, **kwargs)

    return delegate


class LifecycleEngine:
    """Record and read customer lifecycles on a store (SQLite file, PostgreSQL, memory).

    The whole public surface (docs/architecture.md, "The engine"):

    - **writing** (the write side's, ``lifecycle_es.writing``): one method per command
      (``register``, ``purchase``, ... ``end_campaign``; docs/commands.md), ``execute``,
      ``record``, ``erase``, ``rotate_master_key``, ``set_stage_model``;
      bulk writes ``import_file`` (JSON Lines, or CSV with a mapping),
      ``import_lines``, ``record_many``, ``record_request`` (the HTTP API's), ``find_import``;
    - **aggregates**: ``customer()``, ``campaign()``, ``history()``, ``stored_aggregate()``;
    - **people** of the web console: ``user()``, ``authenticate()``, and one method per
      user command (adding, changing the role or password of, disabling a user; docs/console.md);
    - **API tokens** of the HTTP API: ``token_for()``, and one method per token command
      (issuing, revoking; docs/api.md);
    - **reading** (the read side's, ``lifecycle_es.reading``): ``projections`` (the read
      models), ``audit``, ``metrics``, ``gaps()``, ``health()``, ``customer_facts()``,
      ``predict()``;
      ``verify()`` (the hash chains), ``freshness()``; ``reader`` (the engine queries read) and
      ``read_store``; ``event_log``;
    - **the store**: ``store``, ``stage_model``, ``projections_path``, ``encrypt``,
      ``master_key``, ``opener()``, ``close()``, ``for_queries()`` (an engine that only
      reads a read store);
    - **notifications** (``lifecycle_es.notifying``, docs/notifications.md): ``notifier()``
      (alerts of gaps to webhooks and e-mail through an outbox), ``notifier_thread()``;
    - ``writer``: the write side itself (the ``eventsourcing`` Application: ``recorder``,
      ``repository``, ``snapshots``, ``mapper``, ``keyring``) for what the facade does not
      cover.
    """

    def __init__(
        self,
        store: str | StoreURL | None = None,
        *,
        read_store: str | StoreURL | None = None,
        stage_model: StageModel | str | None = None,
        projections_path: Sequence[str] = (),
        encrypt: bool = True,
        create: bool = True,
        snapshot_every: int | None = None,
    ) -> None:
        """``store`` is a URL (``sqlite:///lifecycle.db``, ``postgresql://user@host:5432/db``,
        ``memory://``); when omitted, ``$LIFECYCLE_ES_STORE`` or ``sqlite:///lifecycle.db``.
        A ``store`` with ``?read_only=on`` is only read (nothing is created, written or
        caught up). ``read_store`` (a replica, a read-only role) sends every query
        (``audit``, ``metrics``, ``gaps()``, ``health()``, ``reader``) there: read only,
        never caught up. ``stage_model`` is a :class:`StageModel`, a preset name or a TOML
        path (the store remembers it; ``classic`` for a new store). ``projections_path``
        adds folders of custom read models. ``encrypt=False`` stores personal fields as
        given (docs/privacy.md). ``create=False`` refuses a store that does not exist.
        ``snapshot_every``: events between a customer's snapshots (0: none)."""
        parts = bootstrap(store, read_store=read_store, stage_model=stage_model,
                          projections_path=projections_path, encrypt=encrypt, create=create,
                          snapshot_every=snapshot_every)
        #: the write side (``writing/``): the ``eventsourcing`` Application of this store
        self.writer: BulkImportApplication = parts.writer
        #: the store queries read instead of this one (read only), or None
        self.read_store: StoreURL | None = parts.read_store
        self._read: ReadSide = parts.read
        self._reader: LifecycleEngine | None = None

    @classmethod
    def for_queries(cls, read_store: str | StoreURL, *, projections_path: Sequence[str] = (),
                    encrypt: bool = True) -> LifecycleEngine:
        """An engine that only reads ``read_store`` (a replica, a read-only role): nothing
        is created, written or caught up there — what ``reader`` is when a read store is
        given, and what the CLI's ``--read-store`` opens."""
        return cls(queries_store(None, read_store), projections_path=projections_path,
                   encrypt=encrypt)

    # ------------------------------------------------------------------ the store

    @property
    def store(self) -> StoreURL:
        """The store's URL."""
        return self.writer.store

    @property
    def stage_model(self) -> StageModel:
        """The store's stage model."""
        return self.writer.stage_model

    @property
    def projections_path(self) -> list[str]:
        """The folders of custom read models."""
        return self.writer.projections_path

    @property
    def encrypt(self) -> bool:
        """Whether personal fields are encrypted (docs/privacy.md)."""
        return self.writer.encrypt

    @property
    def event_log(self) -> EventLog:
        """The event log as the read side reads it: head, pages, one aggregate's events."""
        return self._read.event_log

    @property
    def master_key(self) -> MasterKey | None:
        """The master key wrapping the store's data keys (None with ``encrypt=False``)."""
        keyring = self.writer.keyring
        return None if keyring is None else keyring.master

    def opener(self) -> Callable[[], LifecycleEngine]:
        """A picklable callable that opens this engine again in another process (same
        store, stage model, read-model folders and encryption; creates nothing)."""
        return partial(LifecycleEngine, self.store, stage_model=self.stage_model,
                       projections_path=self.projections_path, encrypt=self.encrypt,
                       create=False)

    def close(self) -> None:
        """Close the store's connections (events and read models; the read store's)."""
        if self._reader is not None:
            self._reader.close()
        self._read.close()
        self.writer.close()

    def __enter__(self) -> Self:
        """``with LifecycleEngine(...) as engine:`` closes it at the end."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    execute = _writes(BulkImportApplication.execute)
    record = _writes(BulkImportApplication.record)
    rotate_master_key = _writes(BulkImportApplication.rotate_master_key)
    find_import = _writes(BulkImportApplication.find_import)
    import_file = _writes_in_bulk(BulkImportApplication.import_file)
    import_lines = _writes_in_bulk(BulkImportApplication.import_lines)
    record_many = _writes_in_bulk(BulkImportApplication.record_many)

    def record_request(self, commands: Sequence[tuple[int, Command]],
                       **options: Any) -> RequestResult:
        """The write side's :meth:`~lifecycle_es.writing.bulk_import.BulkImportApplication.
        record_request` (the HTTP API's). The read models' connection is set aside only for
        a request large enough to start the import's writer process (over half a batch of
        events, at two per command at most): a small request keeps it, and the API's reads
        meanwhile (docs/performance.md, "HTTP API")."""
        batch = int(options.get("batch_size", DEFAULT_WRITE_BATCH))
        if 2 * len(commands) > batch // 2:
            with self._read.room_for_a_writer():
                return self.writer.record_request(commands, **options)
        return self.writer.record_request(commands, **options)

    register = _writes(BulkImportApplication.register)
    touchpoint = _writes(BulkImportApplication.touchpoint)
    change_stage = _writes(BulkImportApplication.change_stage)
    assign_owner = _writes(BulkImportApplication.assign_owner)
    release_owner = _writes(BulkImportApplication.release_owner)
    send_handover = _writes(BulkImportApplication.send_handover)
    accept_handover = _writes(BulkImportApplication.accept_handover)
    reject_handover = _writes(BulkImportApplication.reject_handover)
    purchase = _writes(BulkImportApplication.purchase)
    payment = _writes(BulkImportApplication.payment)
    renewal = _writes(BulkImportApplication.renewal)
    expansion = _writes(BulkImportApplication.expansion)
    contraction = _writes(BulkImportApplication.contraction)
    churn = _writes(BulkImportApplication.churn)
    win_back = _writes(BulkImportApplication.win_back)
    nps_answer = _writes(BulkImportApplication.nps_answer)
    csat_answer = _writes(BulkImportApplication.csat_answer)
    check_in = _writes(BulkImportApplication.check_in)
    request_advocacy = _writes(BulkImportApplication.request_advocacy)
    give_advocacy = _writes(BulkImportApplication.give_advocacy)
    void_event = _writes(BulkImportApplication.void_event)
    assign_gap = _writes(BulkImportApplication.assign_gap)
    snooze_gap = _writes(BulkImportApplication.snooze_gap)
    dismiss_gap = _writes(BulkImportApplication.dismiss_gap)
    announce_campaign = _writes(BulkImportApplication.announce_campaign)
    amend_campaign = _writes(BulkImportApplication.amend_campaign)
    end_campaign = _writes(BulkImportApplication.end_campaign)

    def erase(self, *, customer: str, reason: str, actor: str | None = None) -> int:
        """Erase the customer's personal data (the write side's
        :meth:`~lifecycle_es.writing.application.LifecycleApplication.erase`), then bring
        the read models up to the erasure (their copies become placeholders) and, on
        SQLite, empty the write-ahead log of old page images (docs/privacy.md)."""
        version = self.writer.erase(customer=customer, reason=reason, actor=actor)
        checkpoint = getattr(self.writer.recorder, "checkpoint", None)
        try:  # a read model that cannot catch up says so; the log is emptied all the same
            self.projections.catch_up()
        finally:
            wal_emptied = checkpoint is None or checkpoint()
        if not wal_emptied:
            log.warning("erase.wal_busy", detail="a reader kept the write-ahead log from "
                        "being emptied: it still holds old pages until the next checkpoint")
        return version

    def set_stage_model(self, model: StageModel | str, *,
                        mapping: Mapping[str, str] | None = None,
                        actor: str | None = None) -> ModelChange:
        """Change the store's stage model on purpose (the write side's
        :meth:`~lifecycle_es.writing.application.LifecycleApplication.set_stage_model`);
        the read side reads with the new model from then on."""
        change = self.writer.set_stage_model(model, mapping=mapping, actor=actor)
        self._read.use_stage_model(self.writer.stage_model)
        return change

    # ------------------------------------------------------------------ aggregates

    # ------------------------------------------------------------------ people (the console)

    user = _writes(BulkImportApplication.user)
    authenticate = _writes(BulkImportApplication.authenticate)
    add_user = _writes(BulkImportApplication.add_user)
    change_user_role = _writes(BulkImportApplication.change_user_role)
    change_user_password = _writes(BulkImportApplication.change_user_password)
    disable_user = _writes(BulkImportApplication.disable_user)

    # ------------------------------------------------------------------ API tokens
    token_for = _writes(BulkImportApplication.token_for)
    add_token = _writes(BulkImportApplication.add_token)
    revoke_token = _writes(BulkImportApplication.revoke_token)

    customer = _writes(BulkImportApplication.customer)
    campaign = _writes(BulkImportApplication.campaign)
    history = _writes(BulkImportApplication.history)
    stored_aggregate = _writes(BulkImportApplication.stored_aggregate)

    # ------------------------------------------------------------------ reading

    @property
    def reader(self) -> LifecycleEngine:
        """The engine queries read: this one, or a read-only engine on ``read_store`` (its
        read models as they are there; ``reader.projections`` for the read-model queries of
        ``lifecycle_es.reading.projection.queries`` and their freshness)."""
        if self.read_store is None:
            return self
        if self._reader is None:
            self._reader = LifecycleEngine.for_queries(
                self.read_store, projections_path=self.projections_path, encrypt=self.encrypt)
        return self._reader

    @property
    def projections(self) -> ProjectionManager:
        """Read models: ``engine.projections.catch_up()``, ``.rebuild()``, ``.status()``."""
        return self._read.projections

    @cached_property
    def audit(self) -> Audit:
        """Audit queries: ``engine.audit.timeline(...)``, ``.state(...)``, ``.events(...)``."""
        from lifecycle_es.reading.audit.queries import Audit

        return Audit(self.reader._read)

    @cached_property
    def metrics(self) -> Metrics:
        """Lifecycle metrics for any period: ``engine.metrics.summary(...)``, ``.funnel()``..."""
        from lifecycle_es.reading.metrics.queries import Metrics

        return Metrics(self.reader._read)

    def predict(self, as_of: When | None = None, *, unit: str = "day", horizon: int = 90,
                discount: float = 0.0) -> Prediction:
        """BG/NBD and Gamma-Gamma fitted on the purchases before ``as_of`` (a date, default
        today), and each customer's probability alive, expected occasions and value over
        ``horizon`` days (``unit`` day|week; ``discount`` an annual rate). See
        :class:`lifecycle_es.reading.prediction.queries.Predictor`; docs/metrics.md."""
        from lifecycle_es.reading.prediction.queries import Predictor

        return Predictor(self.reader._read).predict(as_of, unit=unit, horizon=horizon,
                                                    discount=discount)

    def gaps(self, as_of: When | None = None, kind: str | None = None,
             team: str | None = None, *, config: Config | None = None,
             owner: str | None = None, assignee: str | None = None,
             include_snoozed: bool = False, include_dismissed: bool = False,
             customer: str | None = None, limit: int | None = None,
             offset: int = 0) -> list[Gap]:
        """Customers left hanging between teams at ``as_of`` (default now), oldest first: of
        one ``kind``, for one ``team`` or ``owner`` (responsible for the gap), assigned to
        ``assignee``, of one ``customer``; snoozed and dismissed gaps only if asked for;
        ``limit`` / ``offset``: one page. See
        :func:`lifecycle_es.reading.lifecycle_checks.gaps.find_gaps`."""
        from lifecycle_es.reading.lifecycle_checks.gaps import find_gaps

        return find_gaps(self.reader._read, as_of, kind, team, config=config, owner=owner,
                         customer=customer, assignee=assignee, include_snoozed=include_snoozed,
                         include_dismissed=include_dismissed, limit=limit, offset=offset)

    def health(self, customer: str | None = None, as_of: When | None = None, *,
               config: Config | None = None, team: str | None = None,
               owner: str | None = None, limit: int | None = None,
               offset: int = 0) -> list[Health]:
        """Health scores with each factor's contribution, worst first: of customers in a
        stage of ``team`` / owned by ``owner``; ``limit`` / ``offset``: one page. See
        :func:`lifecycle_es.reading.lifecycle_checks.health.health_scores`."""
        from lifecycle_es.reading.lifecycle_checks.health import health_scores

        return health_scores(self.reader._read, customer, as_of, config=config, team=team,
                             owner=owner, limit=limit, offset=offset)

    def verify(self, anchor: str | None = None) -> VerifyReport:
        """Recompute the hash chains of the store queries read (events, settings) and report
        every break; see :func:`lifecycle_es.reading.audit.verify.verify`."""
        from lifecycle_es.reading.audit.verify import verify

        return verify(self.reader._read, anchor)

    def freshness(self) -> Freshness | None:
        """How far behind the log the read models the queries read are (their positions,
        lag and age; ``reading/projection/freshness.py``); None when no query opened them."""
        read = self.reader._read
        if not read.opened:
            return None
        from lifecycle_es.reading.projection.freshness import freshness

        return freshness(read.projections)

    def customer_facts(self, as_of: datetime) -> dict[str, CustomerFacts]:
        """Each customer's facts at ``as_of`` (stage, owner, MRR, contract end...), by
        customer: what gaps and health are computed from, and the report lists."""
        from lifecycle_es.reading.lifecycle_checks.facts import reader_for

        return reader_for(self.reader._read).customers(as_of)

    # ------------------------------------------------------------------ notifications

    def notifier(self, notifications: Notifications | None, *,
                 config: Config | None = None) -> Notifier:
        """Alerts of this store's gaps to the channels of ``notifications`` (gap thresholds
        of ``config``): ``tick()``, ``run(stop)``, ``status()``, ``retry()``
        (docs/notifications.md); without ``notifications`` only the last two."""
        from lifecycle_es.notifying.sender import Notifier

        return Notifier(self._read, notifications, gaps_config=config)

    def notifier_thread(self, notifications: Notifications, *,
                        config: Config | None = None) -> NotifierThread:
        """A notifier in a thread of its own (a server's), on read models of its own
        (``start()``, ``stop()``)."""
        from lifecycle_es.notifying.thread import NotifierThread

        read = self._read
        if self.store.kind == "memory":  # a memory store is one object
            return NotifierThread(lambda: read, notifications, config)
        return NotifierThread(read.opener(), notifications, config,
                              close=lambda source: source.projections.read.close())

