"""The stage model: ordered lifecycle stages, their owning teams and allowed transitions.

Stages vary by business, so the model is configuration (a pydantic model, loadable from TOML),
not code. Two presets ship: ``classic`` and ``customer-success``. Every model has the terminal
``churned`` stage, reached only by a ``churned`` event from a paying customer and left only by
a ``won_back`` event.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lifecycle_es.errors import ConfigError

CHURNED = "churned"


class Stage(BaseModel):
    """One lifecycle stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    team: str = Field(min_length=1, description="team that owns customers in this stage")
    paying: bool = Field(False, description="customers in this stage normally pay")
    stall_after_days: int | None = Field(
        None, ge=1, description="a customer longer than this in the stage is 'stalled'"
    )


class StageModel(BaseModel):
    """Ordered stages plus the transitions allowed between them.

    ``transitions`` maps a stage to the stages it may move to. When it is omitted every
    stage may move to every other (forward or backward); backward moves are recorded as
    regressions. ``churned`` is added by the model itself and never listed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    teams: list[str] = Field(default_factory=lambda: ["marketing", "sales", "success", "support"])
    stages: list[Stage] = Field(min_length=1)
    transitions: dict[str, list[str]] | None = None
    win_back_stage: str | None = Field(
        None, description="stage a won-back customer re-enters (default: first paying stage)"
    )

    @model_validator(mode="after")
    def _check(self) -> StageModel:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stages: duplicate stage names in {names}")
        if CHURNED in names:
            raise ValueError(f"stages: {CHURNED!r} is built in and must not be listed")
        for stage in self.stages:
            if stage.team not in self.teams:
                raise ValueError(f"stages.{stage.name}.team: unknown team {stage.team!r}")
        if not any(s.paying for s in self.stages):
            raise ValueError("stages: at least one stage must be paying")
        for src, targets in (self.transitions or {}).items():
            for name in [src, *targets]:
                if name not in names:
                    raise ValueError(f"transitions: unknown stage {name!r}")
        if self.win_back_stage is not None and self.win_back_stage not in names:
            raise ValueError(f"win_back_stage: unknown stage {self.win_back_stage!r}")
        return self

    @cached_property
    def names(self) -> list[str]:
        """Stage names in order (without ``churned``)."""
        return [s.name for s in self.stages]

    @cached_property
    def _by_name(self) -> dict[str, Stage]:
        return {s.name: s for s in self.stages}

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; ``churned`` is owned by the team of the last stage."""
        if name == CHURNED:
            return Stage(name=CHURNED, team=self.stages[-1].team, paying=False)
        return self._by_name[name]

    def has_stage(self, name: str) -> bool:
        return name == CHURNED or name in self._by_name

    @property
    def first_stage(self) -> str:
        return self.stages[0].name

    @property
    def reentry_stage(self) -> str:
        """Where a won-back customer goes."""
        return self.win_back_stage or next(s.name for s in self.stages if s.paying)

    def index(self, name: str) -> int:
        """Position of a stage in the order; ``churned`` sorts after every stage."""
        return len(self.stages) if name == CHURNED else self.names.index(name)

    def allowed_targets(self, from_stage: str) -> list[str]:
        """Stages a ``stage_changed`` may move to from ``from_stage``."""
        if from_stage == CHURNED:
            return []
        if self.transitions is None:
            return [n for n in self.names if n != from_stage]
        return list(self.transitions.get(from_stage, []))

    def is_regression(self, from_stage: str, to_stage: str) -> bool:
        return self.index(to_stage) < self.index(from_stage)

    @classmethod
    def from_toml(cls, path: str | Path) -> StageModel:
        """Load a model from a TOML file (see ``docs/stage-model.md``)."""
        from lifecycle_es.config import load_toml

        return load_toml(cls, path, "stage model file")


CLASSIC = StageModel(
    name="classic",
    stages=[
        Stage(name="awareness", team="marketing", stall_after_days=90),
        Stage(name="consideration", team="sales", stall_after_days=60),
        Stage(name="purchase", team="sales", paying=True, stall_after_days=30),
        Stage(name="onboarding", team="success", paying=True, stall_after_days=45),
        Stage(name="retention", team="success", paying=True),
        Stage(name="advocacy", team="success", paying=True),
    ],
    win_back_stage="onboarding",
)

CUSTOMER_SUCCESS = StageModel(
    name="customer-success",
    stages=[
        Stage(name="acquisition", team="sales", stall_after_days=90),
        Stage(name="onboarding", team="success", paying=True, stall_after_days=45),
        Stage(name="adoption", team="success", paying=True, stall_after_days=90),
        Stage(name="growth", team="success", paying=True),
        Stage(name="retention", team="success", paying=True),
        Stage(name="advocacy", team="success", paying=True),
    ],
    win_back_stage="onboarding",
)

PRESETS: dict[str, StageModel] = {m.name: m for m in (CLASSIC, CUSTOMER_SUCCESS)}


def load_stage_model(name_or_path: str | None) -> StageModel:
    """A preset by name (``classic``, ``customer-success``) or a TOML file path."""
    if name_or_path is None:
        return CLASSIC
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    if name_or_path.endswith(".toml") or Path(name_or_path).exists():
        return StageModel.from_toml(name_or_path)
    raise ConfigError(
        f"stage_model={name_or_path!r}: not a preset ({', '.join(PRESETS)}) nor a TOML file"
    )
