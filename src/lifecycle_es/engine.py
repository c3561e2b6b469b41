"""The composition root: the engine wires the write side and the read side on one store.

>>> engine = LifecycleEngine("memory://")
>>> engine.register(customer="acme", at="2024-01-02T09:00:00Z", actor="ann", team="marketing",
...                 name="Acme", segment="smb", source="web")
1

The write side (``lifecycle_es.writing``: commands, bulk import) is the application it
extends; the read side (``lifecycle_es.reading``: read models, audit, metrics, gaps, health)
is built here on the same store and event log. Neither side imports the other, nor this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from lifecycle_es.logs import get_logger
from lifecycle_es.stores.url import StoreURL
from lifecycle_es.writing.bulk_import import (
    DEFAULT_WRITE_BATCH,
    BulkImportApplication,
    ImportResult,
    iter_jsonl,
)
from lifecycle_es.writing.retry import retry_on_conflict

if TYPE_CHECKING:  # the read side is imported when first used (start-up time of the CLI)
    from lifecycle_es.config import Config
    from lifecycle_es.reading.audit.queries import Audit
    from lifecycle_es.reading.lifecycle_checks.gaps import Gap
    from lifecycle_es.reading.lifecycle_checks.health import Health
    from lifecycle_es.reading.metrics.calc import When
    from lifecycle_es.reading.metrics.queries import Metrics
    from lifecycle_es.reading.projection.runner import ProjectionManager

log = get_logger("lifecycle_es.writing")

__all__ = ["DEFAULT_WRITE_BATCH", "ImportResult", "LifecycleEngine", "iter_jsonl",
           "retry_on_conflict"]


class LifecycleEngine(BulkImportApplication):
    """Record and read customer lifecycles on a store (SQLite file, PostgreSQL, memory).

    Writing is :class:`~lifecycle_es.writing.application.LifecycleApplication`'s (one method
    per command) and :class:`~lifecycle_es.writing.bulk_import.BulkImportApplication`'s
    (imports); reading is ``projections``, ``audit``, ``metrics``, ``gaps()``, ``health()``.
    """

    name = "lifecycle"

    def __init__(self, store: str | StoreURL | None = None, *,
                 read_store: str | StoreURL | None = None, **options: Any) -> None:
        """``store`` as for the write side; ``read_store`` (a replica, a read-only role)
        sends every query (``audit``, ``metrics``, ``gaps()``, ``health()``, ``reader``)
        there: read only, never caught up. A ``store`` with ``?read_only=on`` is itself
        only read (nothing is created, written or caught up)."""
        parsed = StoreURL.parse(store)
        if parsed.read_only:
            options["create"] = False
        self._read_store = None if read_store is None else StoreURL.parse(read_store)
        super().__init__(parsed, **options)

    @cached_property
    def reader(self) -> LifecycleEngine:
        """The engine queries read: this one, or a read-only engine on ``read_store`` (its
        read models as they are there; ``reader.projections`` for the read-model queries of
        ``lifecycle_es.reading.projection.queries`` and their freshness)."""
        if self._read_store is None or self.store.read_only:
            return self
        return LifecycleEngine(self._read_store.as_read_only(),
                               projections_path=self.projections_path, encrypt=self.encrypt)

    @cached_property
    def projections(self) -> ProjectionManager:
        """Read models: ``engine.projections.catch_up()``, ``.rebuild()``, ``.status()``."""
        from lifecycle_es.reading.projection.runner import ProjectionManager

        return ProjectionManager(self)

    @cached_property
    def audit(self) -> Audit:
        """Audit queries: ``engine.audit.timeline(...)``, ``.state(...)``, ``.events(...)``."""
        from lifecycle_es.reading.audit.queries import Audit

        return Audit(self.reader)

    @cached_property
    def metrics(self) -> Metrics:
        """Lifecycle metrics for any period: ``engine.metrics.summary(...)``, ``.funnel()``..."""
        from lifecycle_es.reading.metrics.queries import Metrics

        return Metrics(self.reader)

    def gaps(self, as_of: When | None = None, kind: str | None = None,
             team: str | None = None, *, config: Config | None = None,
             owner: str | None = None, limit: int | None = None,
             offset: int = 0) -> list[Gap]:
        """Customers left hanging between teams at ``as_of`` (default now), oldest first: of
        one ``kind``, for one ``team`` or ``owner`` (responsible for the gap); ``limit`` /
        ``offset``: one page. See
        :func:`lifecycle_es.reading.lifecycle_checks.gaps.find_gaps`."""
        from lifecycle_es.reading.lifecycle_checks.gaps import find_gaps

        return find_gaps(self.reader, as_of, kind, team, config=config, owner=owner,
                         limit=limit, offset=offset)

    def health(self, customer: str | None = None, as_of: When | None = None, *,
               config: Config | None = None, team: str | None = None,
               owner: str | None = None, limit: int | None = None,
               offset: int = 0) -> list[Health]:
        """Health scores with each factor's contribution, worst first: of customers in a
        stage of ``team`` / owned by ``owner``; ``limit`` / ``offset``: one page. See
        :func:`lifecycle_es.reading.lifecycle_checks.health.health_scores`."""
        from lifecycle_es.reading.lifecycle_checks.health import health_scores

        return health_scores(self.reader, customer, as_of, config=config, team=team,
                             owner=owner, limit=limit, offset=offset)

    def import_lines(self, lines: Iterable[str | bytes], **options: Any) -> ImportResult:
        """:meth:`BulkImportApplication.import_lines` within the connection budget (see
        :meth:`_room_for_a_writer`)."""
        with self._room_for_a_writer():
            return super().import_lines(lines, **options)

    def record_many(self, commands: Any, **options: Any) -> ImportResult:
        """:meth:`BulkImportApplication.record_many` within the connection budget (see
        :meth:`_room_for_a_writer`)."""
        with self._room_for_a_writer():
            return super().record_many(commands, **options)

    def _room_for_a_writer(self) -> AbstractContextManager[None]:
        """The read models' connection closed while a bulk write runs: its writer process
        takes its place in the process's connection budget (docs/operations.md); queries and
        a live runner of this process wait for the write's end."""
        if "projections" in self.__dict__:
            return self.projections.read.set_aside()
        return nullcontext()

    def erase(self, *, customer: str, reason: str, actor: str | None = None) -> int:
        """Erase the customer's personal data (see
        :meth:`~lifecycle_es.writing.application.LifecycleApplication.erase`), then bring
        the read models up to the erasure (their copies become placeholders) and, on
        SQLite, empty the write-ahead log of old page images (docs/privacy.md)."""
        version = super().erase(customer=customer, reason=reason, actor=actor)
        checkpoint = getattr(self.recorder, "checkpoint", None)
        try:  # a read model that cannot catch up says so; the log is emptied all the same
            self.projections.catch_up()
        finally:
            wal_emptied = checkpoint is None or checkpoint()
        if not wal_emptied:
            log.warning("erase.wal_busy", detail="a reader kept the write-ahead log from "
                        "being emptied: it still holds old pages until the next checkpoint")
        return version

    def opener(self) -> Callable[[], LifecycleEngine]:
        """A picklable callable that opens this engine again in another process (same
        store, stage model, read-model folders and encryption; creates nothing): how a
        parallel rebuild's workers open the store."""
        return partial(LifecycleEngine, self.store, stage_model=self.stage_model,
                       projections_path=self.projections_path, encrypt=self.encrypt,
                       create=False)

    def close(self) -> None:
        """Close the store's connections (events and read models; the read store's)."""
        if self.__dict__.get("reader", self) is not self:
            self.reader.close()
        if "projections" in self.__dict__:
            self.projections.read.close()
        super().close()
