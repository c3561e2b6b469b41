"""Shell completion of option values that come from a fixed set (gap kinds, stages, teams,
stage model presets), for ``lifecycle-es --install-completion``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lifecycle_es.domain import EVENT_TYPES
from lifecycle_es.domain.stage_model import PRESETS

Completer = Callable[[str], list[str]]


def choices(values: Iterable[str]) -> Completer:
    """A completer offering the ``values`` that start with what was typed, in order."""
    known = list(dict.fromkeys(values))

    def complete(incomplete: str) -> list[str]:
        return [v for v in known if v.startswith(incomplete)]

    return complete


#: the stages and teams of the preset stage models (a store's own TOML model may add more)
STAGES = choices(s for m in PRESETS.values() for s in (*m.names, "churned"))
TEAMS = choices(t for m in PRESETS.values() for t in m.teams)
STAGE_MODELS = choices(PRESETS)
#: the event types (``audit events --type``)
EVENT_TYPES_COMPLETER = choices(sorted(EVENT_TYPES))
