"""The projection API: a read model is a small class with tables and event handlers.

    class CurrentStage(Projection):
        name = "current_stage"
        version = 1
        tables = (Table("current_stage", key=("customer",), columns={...}),)

        @on(Customer.StageChanged)
        def moved(self, e: Customer.StageChanged, db: Tables) -> None:
            db["current_stage"].update(e.customer, stage=e.to_stage)

Handlers only read and write rows through ``db``; the machinery batches the writes, records the
position in the same transaction, rebuilds into shadow tables and swaps them in atomically.
When a customer event is voided, every table with a ``partition`` column is re-folded for that
customer from its remaining events (set ``refold_on_void = False`` to handle voids yourself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from lifecycle_es.reading.projection.table import COLUMN_TYPES, Column, Table

__all__ = ["COLUMN_TYPES", "BoundHandler", "Column", "Handler", "Projection", "Table", "on"]

if TYPE_CHECKING:
    from lifecycle_es.domain.stage_model import StageModel
    from lifecycle_es.reading.projection.writer import Tables

Handler = Callable[[Any, Any, "Tables"], None]
#: a handler bound to its projection: ``handler(event, db)``
BoundHandler = Callable[[Any, "Tables"], None]


def on(*event_classes: type) -> Callable[[Handler], Handler]:
    """Mark a projection method as the handler of these event classes."""

    def mark(func: Handler) -> Handler:
        func.__dict__.setdefault("_handles", []).extend(event_classes)
        return func

    return mark


class Projection:
    """Base class of read models. Subclasses set ``name``, ``version``, ``tables``."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[Table, ...]] = ()
    refold_on_void: ClassVar[bool] = True
    #: True when handlers only read and write rows of the event's own aggregate (customer
    #: or campaign): a full rebuild then replays the log aggregate by aggregate, writing each
    #: row once with memory bounded by the batch, instead of in recording order
    replay_by_aggregate: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: rough cost of rebuilding this read model relative to others (1.0 = a typical one);
    #: ``projections rebuild --jobs N`` balances its groups of read models by it
    rebuild_cost: ClassVar[float] = 1.0

    handlers: ClassVar[dict[type, list[str]]] = {}
    _bound: dict[type, list[BoundHandler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type, list[str]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for event_class in getattr(value, "_handles", ()):
                    handlers.setdefault(event_class, [])
                    if attr not in handlers[event_class]:
                        handlers[event_class].append(attr)
        cls.handlers = handlers

    def __init__(self, model: StageModel) -> None:
        self.model = model

    def handlers_of(self, event_class: type) -> list[BoundHandler]:
        """The bound handlers of ``event_class``, in declaration order."""
        try:
            bound = self._bound
        except AttributeError:  # built lazily: subclasses may override __init__
            bound = self._bound = {cls: [getattr(self, a) for a in attrs]
                                   for cls, attrs in self.handlers.items()}
        return bound.get(event_class, [])

    def apply(self, event: Any, db: Tables) -> None:
        """Run every handler of ``event``'s class."""
        for handler in self.handlers_of(type(event)):
            handler(event, db)

    def handles(self, event_class: type) -> bool:
        return event_class in self.handlers
