"""Shared CLI state: global options and the lazily opened engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine


@dataclass
class CliState:
    store: str | None = None
    stage_model: str | None = None
    projections_path: list[str] = field(default_factory=list)
    _engine: LifecycleEngine | None = None

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


def state(ctx: typer.Context) -> CliState:
    """The CliState of the running command (set by the top-level callback)."""
    root = ctx.find_root()
    assert isinstance(root.obj, CliState)
    return root.obj
