"""What the projection machinery needs from its composition root: the store, its stage model,
the folders of read models, and the event log to read (``stores/event_log.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lifecycle_es.domain.stage_model import StageModel
    from lifecycle_es.stores.event_log import EventLog
    from lifecycle_es.stores.url import StoreURL


class LogSource(Protocol):
    """A store's event log with what read models are built for (``bootstrap.ReadSide``)."""

    store: StoreURL
    stage_model: StageModel
    projections_path: list[str]

    @property
    def event_log(self) -> EventLog: ...
