"""Changing an existing store's stage model on purpose (``engine.set_stage_model``).

Customers sitting in a stage the new model lacks are found from the log (their stage events,
then their current state), refused unless a mapping names where each such stage goes, and
moved by ``stage_changed`` events the change records: the log stays the only source of every
customer's stage (docs/stage-model.md, "Changing a store's model").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.utils import get_topic

from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.stage_model import StageModel
from lifecycle_es.errors import FieldProblem, InvalidInput, InvariantViolation
from lifecycle_es.stores.event_log import EventLog

#: the events that put a customer in a stage, and the field naming it
_STAGE_FIELDS = {get_topic(Customer.Registered): "stage",
                 get_topic(Customer.StageChanged): "to_stage",
                 get_topic(Customer.WonBack): "stage"}
_PAGE = 5_000


@dataclass(frozen=True)
class ModelChange:
    """What :meth:`set_stage_model` did: the models' names, whether the stored model changed,
    and the customers it moved (external id -> (old stage, new stage))."""

    previous: str
    model: str
    changed: bool
    moved: dict[str, tuple[str, str]] = field(default_factory=dict)

    def moves(self) -> dict[tuple[str, str], int]:
        """How many customers moved from each old stage to each new one."""
        return dict(Counter(self.moved.values()))


def stage_events(log: EventLog) -> Iterator[tuple[str, str]]:
    """(customer, stage entered) of every event that put a customer in a stage, in log
    order (the topics filtered by the store; personal fields left sealed)."""
    start = 1
    while True:
        page = log.recorder.select_notifications(start, _PAGE, topics=list(_STAGE_FIELDS))
        for n in page:
            state = log.decode_state(n.topic, n.state)
            yield str(state["customer"]), str(state[_STAGE_FIELDS[n.topic]])
        if len(page) < _PAGE:
            return
        start = page[-1].id + 1


def stranded(events: Iterator[tuple[str, str]], load: Callable[[str], Customer],
             model: StageModel) -> dict[str, Customer]:
    """The customers (external id -> aggregate) whose current stage ``model`` lacks. Only
    customers that ever entered such a stage are loaded; erased ones are left out (nothing
    more is recorded on them)."""
    candidates = {c for c, stage in events if not model.has_stage(stage)}
    out: dict[str, Customer] = {}
    for key in sorted(candidates):
        c = load(key)
        if c.state.erased_at is None and not model.has_stage(c.state.stage):
            out[key] = c
    return out


def check_mapping(mapping: Mapping[str, str], model: StageModel,
                  customers: Mapping[str, Customer]) -> None:
    """Refuse a mapping to a stage ``model`` lacks or from one it has (InvalidInput), and
    customers whose stage the mapping leaves out (InvariantViolation naming the stages)."""
    bad = [FieldProblem(f"map.{old}", new, f"not a stage of model {model.name!r} "
                        f"({', '.join(model.names)})")
           for old, new in mapping.items() if new not in model.names]
    bad += [FieldProblem(f"map.{old}", new, f"{old!r} is a stage of model {model.name!r}: "
                         "its customers stay in it")
            for old, new in mapping.items() if model.has_stage(old)]
    if bad:
        raise InvalidInput(bad, "stage_model")
    left = Counter(c.state.stage for c in customers.values() if c.state.stage not in mapping)
    if left:
        stages = ", ".join(f"{s} ({n} customer{'s' * (n != 1)})" for s, n in sorted(left.items()))
        old = min(left)
        raise InvariantViolation(
            "stage_model", model.name,
            f"customers sit in stages model {model.name!r} lacks: {stages}; map each to a "
            f"stage of the new model (--map {old}={model.first_stage}, or "
            f"mapping={{{old!r}: {model.first_stage!r}}})")


def move(customers: Mapping[str, Customer], mapping: Mapping[str, str], model: StageModel,
         meta: Callable[[str], dict[str, Any]], previous: str,
         ) -> dict[str, tuple[str, str]]:
    """Trigger the ``stage_changed`` event of every customer to its mapped stage (``meta``:
    the events' base fields for the new stage's team); returns the moves."""
    moved: dict[str, tuple[str, str]] = {}
    for key, c in customers.items():
        old, new = c.state.stage, mapping[c.state.stage]
        c.move_to_model_stage(model, new, f"stage model changed from {previous!r} to "
                              f"{model.name!r}", meta(model.stage(new).team))
        moved[key] = (old, new)
    return moved
