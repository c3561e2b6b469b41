"""Shared CLI state: global options and the lazily opened engines (the store's, and the read
store's for queries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

if TYPE_CHECKING:
    from lifecycle_es.engine import Freshness, LifecycleEngine

#: the environment variable of ``--read-store``
READ_STORE_ENV = "LIFECYCLE_ES_READ_STORE"

#: the option of every query that catches read models up first
NoCatchUp = Annotated[bool, typer.Option(
    "--no-catch-up", help="read the read models as they are (a 'projections run' keeps them "
                          "fresh) instead of catching them up first (implied by --read-store)")]


@dataclass
class CliState:
    store: str | None = None
    stage_model: str | None = None
    projections_path: list[str] = field(default_factory=list)
    #: ``--read-store``: queries read there, never catch up, never write
    read_store: str | None = None
    _engine: LifecycleEngine | None = None
    _reader: LifecycleEngine | None = None
    #: whether the read store's freshness was already shown (in the JSON answer)
    freshness_shown: bool = False
    #: whether the command's queries share one catch-up (``ProjectionManager.reading``)
    _reading: bool = False

    def engine(self, create: bool = False) -> LifecycleEngine:
        """The engine on the store; only commands that write pass ``create`` (a store that
        does not exist is refused otherwise, and nothing is created)."""
        if self._engine is None:
            from lifecycle_es.engine import LifecycleEngine

            self._engine = LifecycleEngine(
                self.store, stage_model=self.stage_model, projections_path=self.projections_path,
                create=create,
            )
        return self._engine

    def reader(self, catch_up: bool = True) -> LifecycleEngine:
        """The engine a query reads: on ``--read-store`` (read only: never caught up, no
        lock, no DDL; the store itself is not opened), else the store's, whose read models
        are caught up first unless ``catch_up`` is off (``--no-catch-up``)."""
        if self.read_store is None:
            engine = self.engine()
            if not catch_up:
                engine.projections.queries_catch_up = False
            elif not self._reading:  # the command's queries catch up once, by the first
                ctx = click.get_current_context(silent=True)
                if ctx is not None:
                    ctx.find_root().with_resource(engine.projections.reading())
                    self._reading = True
            return engine
        if self._reader is None:
            from lifecycle_es.engine import LifecycleEngine

            self._reader = LifecycleEngine.for_queries(self.read_store,
                                                       projections_path=self.projections_path)
        return self._reader

    def freshness(self) -> Freshness | None:
        """How far behind the read store's read models are (None without a read store, or
        when the command read no read model there)."""
        return None if self._reader is None else self._reader.freshness()

    def json_envelope(self, result: Any) -> Any:
        """A JSON answer read on a read store: ``{"result": ..., "read_models": {...}}``
        (the freshness); otherwise the answer as it is."""
        shown = self.freshness()
        if shown is None:
            return result
        self.freshness_shown = True
        return {"result": result, "read_models": shown.as_dict()}

    def show_freshness(self) -> None:
        """After a query on a read store: its freshness on stderr (unless the JSON answer
        carried it)."""
        if not self.freshness_shown and (shown := self.freshness()) is not None:
            from lifecycle_es.cli.output import say

            say(shown.line(), err=True)


def state(ctx: typer.Context) -> CliState:
    """The CliState of the running command (set by the top-level callback)."""
    root = ctx.find_root()
    assert isinstance(root.obj, CliState)
    return root.obj


def add_list_command(group: typer.Typer, query: str, columns: str, doc: str) -> None:
    """Add ``list`` to ``group``: the rows of ``reading.projection.queries.<query>`` as a
    table, JSON or CSV (``columns``: the name of their column list there)."""

    def list_(
        ctx: typer.Context,
        no_catch_up: NoCatchUp = False,
        json: Annotated[bool, typer.Option("--json", help="print them as JSON")] = False,
        csv: Annotated[bool, typer.Option("--csv", help="print them as CSV")] = False,
    ) -> None:
        from lifecycle_es.cli.output import emit
        from lifecycle_es.reading.projection import queries

        engine = state(ctx).reader(catch_up=not no_catch_up)
        rows = getattr(queries, query)(engine.projections, catch_up=not no_catch_up)
        emit(rows, getattr(queries, columns), as_json=json, as_csv=csv)

    list_.__doc__ = doc
    group.command("list")(list_)
