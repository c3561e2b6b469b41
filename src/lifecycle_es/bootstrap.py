"""The composition root: the write side, the read side and the queries of one store, built
from its URL and options (:func:`bootstrap`); :class:`~lifecycle_es.engine.LifecycleEngine`
is the facade that holds them.

The write side is :class:`~lifecycle_es.writing.bulk_import.BulkImportApplication` (commands,
bulk imports). The read side (:class:`ReadSide`) is built on what the write side opened —
the store, its stage model, the read models' folders and the event log — and never on the
engine or the write side itself. Where queries read is chosen here once (:func:`queries_store`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from lifecycle_es.domain.stage_model import StageModel
from lifecycle_es.stores.event_log import EventLog
from lifecycle_es.stores.url import StoreURL
from lifecycle_es.writing.application import LifecycleApplication
from lifecycle_es.writing.bulk_import import BulkImportApplication

if TYPE_CHECKING:  # the read side is imported when first used (start-up time of the CLI)
    from lifecycle_es.reading.projection.runner import ProjectionManager


class ReadSide:
    """The read models of one store (``projections``), built on its URL, stage model, read
    models' folders and event log: a :class:`lifecycle_es.reading.source.Source` for the
    queries (audit, metrics, gaps, health), which never see the engine."""

    def __init__(self, store: StoreURL, stage_model: StageModel, projections_path: Sequence[str],
                 event_log: EventLog, *, encrypt: bool = True, keep: object = None) -> None:
        self.store = store
        self.stage_model = stage_model
        self.projections_path = list(projections_path)
        self.event_log = event_log
        self._encrypt = encrypt
        self._projections: ProjectionManager | None = None
        #: what opened the store, kept while this read side lives (the library's Application
        #: closes its connections when it is collected); never read
        self._keep = keep

    @property
    def projections(self) -> ProjectionManager:
        """The projection machinery (built on first use: it opens the read models)."""
        if self._projections is None:
            from lifecycle_es.reading.projection.runner import ProjectionManager

            self._projections = ProjectionManager(self)
        return self._projections

    @property
    def opened(self) -> bool:
        """Whether the read models were opened (a query or a catch-up used them)."""
        return self._projections is not None

    def opener(self) -> Callable[[], ReadSide]:
        """A picklable callable that opens this read side again in another process (same
        store, stage model, folders, encryption; creates nothing): a parallel rebuild's
        workers."""
        return partial(open_read_side, self.store, stage_model=self.stage_model,
                       projections_path=self.projections_path, encrypt=self._encrypt)

    def room_for_a_writer(self) -> AbstractContextManager[None]:
        """The read models' connection closed while a bulk write runs: its writer process
        takes its place in the process's connection budget (docs/operations.md); queries
        and a live runner of this process wait for the write's end. Nothing to do when the
        read models were not opened."""
        if self._projections is None:
            return nullcontext()
        return self._projections.read.set_aside()

    def use_stage_model(self, stage_model: StageModel) -> None:
        """Read with ``stage_model`` from now on (after the store's model changed): the read
        models are opened again on next use, built on it."""
        self.stage_model = stage_model
        self.close()
        self._projections = None

    def close(self) -> None:
        """Close the read models' connection (if they were opened)."""
        if self._projections is not None:
            self._projections.read.close()


@dataclass(frozen=True)
class Parts:
    """What :func:`bootstrap` builds: the write side, the read side on the same store, and
    the store queries read instead (``None``: this one)."""

    writer: BulkImportApplication
    read: ReadSide
    read_store: StoreURL | None


def queries_store(store: StoreURL | None, read_store: str | StoreURL | None) -> StoreURL | None:
    """The store queries read when it is not ``store`` itself: ``read_store`` (a replica, a
    read-only role), opened only to read. None without a read store, and for a store that
    is itself only read (``store`` None: queries read only ``read_store``)."""
    if read_store is None or (store is not None and store.read_only):
        return None
    return StoreURL.parse(read_store).as_read_only()


def read_side_of(writer: LifecycleApplication, *, keep: bool = False) -> ReadSide:
    """The read side on what ``writer`` opened: its store, stage model, folders, event log
    (``keep``: the read side keeps ``writer`` open, when nothing else holds it)."""
    return ReadSide(writer.store, writer.stage_model, writer.projections_path, writer.event_log,
                    encrypt=writer.encrypt, keep=writer if keep else None)


def bootstrap(
    store: str | StoreURL | None = None,
    *,
    read_store: str | StoreURL | None = None,
    stage_model: StageModel | str | None = None,
    projections_path: Sequence[str] = (),
    encrypt: bool = True,
    create: bool = True,
    snapshot_every: int | None = None,
) -> Parts:
    """The write side, the read side and where queries read, for ``store`` (options as for
    :class:`~lifecycle_es.engine.LifecycleEngine`). A store URL with ``?read_only=on`` is
    only read: nothing is created, written or caught up."""
    url = StoreURL.parse(store)
    writer = BulkImportApplication(url, stage_model=stage_model,
                                   projections_path=projections_path, encrypt=encrypt,
                                   create=create and not url.read_only,
                                   snapshot_every=snapshot_every)
    return Parts(writer, read_side_of(writer), queries_store(url, read_store))


def open_read_side(store: StoreURL, *, stage_model: StageModel, projections_path: Sequence[str],
                   encrypt: bool) -> ReadSide:
    """The read side of an existing store, opened in another process (:meth:`ReadSide.opener`)."""
    writer = LifecycleApplication(store, stage_model=stage_model,
                                  projections_path=projections_path, encrypt=encrypt,
                                  create=False)
    return read_side_of(writer, keep=True)
