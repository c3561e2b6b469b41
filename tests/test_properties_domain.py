"""Properties of the event-sourced domain, for random valid command sequences:

- replaying a customer's stored events (a fresh engine on SQLite or PostgreSQL) reproduces
  exactly the state of the live aggregate the commands were applied to;
- voiding an event then re-folding gives the same state as never having recorded it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from projection_gen import commands_from_choices

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import Command, VoidEvent, build_command
from lifecycle_es.domain import CLASSIC, Customer
from lifecycle_es.errors import InvariantViolation, LifecycleError

Choices = list[tuple[int, int, int]]
choices = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 19), st.integers(0, 1 << 16)),
                   min_size=1, max_size=40)


_examples = itertools.count()


def _store(factory: Callable[[str], str], kind: str) -> str:
    """One store per test (the fixture's factory) and kind: a schema per example is slow."""
    urls: dict[str, str] = vars(factory).setdefault("property_store_urls", {})
    if kind not in urls:
        urls[kind] = factory(kind)
    return urls[kind]


def _facts(event: object) -> dict[str, object]:
    """An event's fields without its recording time (the live and stored copies differ)."""
    return {k: v for k, v in vars(event).items() if k != "timestamp"}


def fold(commands: Sequence[Command]) -> dict[str, Customer]:
    """Apply commands to live in-memory aggregates, like the engine does before saving."""
    aggregates: dict[str, Customer] = {}
    for cmd in commands:
        if cmd.creates:
            aggregates[cmd.key] = cmd.create(CLASSIC)  # type: ignore[attr-defined]
        else:
            cmd.apply(aggregates[cmd.key], CLASSIC)  # type: ignore[attr-defined]
    return aggregates


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choices=choices)
def test_replaying_stored_events_reproduces_the_live_state(
    store_url_factory: Callable[[str], str], kind: str, choices: Choices,
) -> None:
    url = _store(store_url_factory, kind)
    prefix = f"x{next(_examples)}-"  # examples share one store: keep their customers apart
    commands = [c.model_copy(update={"customer": prefix + c.key})
                for c in commands_from_choices(choices, customers=3)]
    live = fold(commands)
    writer = LifecycleEngine(url)
    writer.record_many(commands)
    writer.close()
    reader = LifecycleEngine(url)
    try:
        for key, aggregate in live.items():
            replayed = reader.customer(key)
            assert replayed.version == aggregate.version
            assert replayed.state == aggregate.state
            assert replayed.voided == aggregate.voided
            assert [_facts(e) for e in reader.history(key)] == [_facts(e) for e in aggregate.recent]
    finally:
        reader.close()


@settings(max_examples=50, deadline=None)
@given(choices=choices, pick=st.integers(0, 1 << 16))
def test_voiding_then_refolding_equals_never_recording_the_event(
    choices: Choices, pick: int,
) -> None:
    commands = commands_from_choices([(0, a, s) for _, a, s in choices], customers=1)
    with_void = fold(commands)["c0"]
    candidates = [e.originator_version for e in with_void.recent[1:]
                  if not isinstance(e, Customer.EventVoided)
                  and e.originator_version not in with_void.voided]
    assume(candidates)
    target = candidates[pick % len(candidates)]
    last_at = with_void.recent[-1].occurred_at
    build_command("event_voided", {
        "customer": "c0", "at": last_at + timedelta(minutes=1), "actor": "ann",
        "team": "sales", "voided_version": target, "reason": "property"},
    ).apply(with_void, CLASSIC)  # type: ignore[attr-defined]

    # The same history typed in again without the command that produced version ``target``
    # (later voids renumbered); skip histories whose later commands depended on it.
    without: list[Command] = []
    for version, cmd in enumerate(commands, start=1):
        if version == target:
            continue
        if isinstance(cmd, VoidEvent):
            assume(cmd.voided_version != target)
            if cmd.voided_version > target:
                cmd = cmd.model_copy(update={"voided_version": cmd.voided_version - 1})
        without.append(cmd)
    try:
        never = fold(without)["c0"]
    except LifecycleError:  # a later command needed the dropped one
        assume(False)
        raise
    # A stage change's ``regression`` flag is a recorded fact (the move was backward when the
    # team made it): voiding an earlier event does not rewrite later events, so the count
    # follows the surviving flags; every other part of the state is as if never recorded.
    surviving = [e for e in with_void.recent if isinstance(e, Customer.StageChanged)
                 and e.originator_version not in with_void.voided]
    assert with_void.state.regressions == sum(e.regression for e in surviving)
    assert replace(with_void.state, regressions=0) == replace(never.state, regressions=0)


def test_fold_rejects_what_the_engine_rejects() -> None:
    """The helper above really applies the rules (guards the properties against vacuity)."""
    bad = build_command("churned", {"customer": "c0", "at": "2024-01-01T00:00:00Z",
                                    "actor": "ann", "team": "sales"})
    register = build_command("customer_registered", {
        "customer": "c0", "at": "2024-01-01T00:00:00Z", "actor": "ann", "team": "sales",
        "name": "C", "segment": "s", "source": "w"})
    with pytest.raises(InvariantViolation):
        fold([register, bad])
    sample = commands_from_choices([(0, a, a * 7919) for a in range(20)] * 3, customers=1)
    assert len({type(c) for c in sample}) >= 8
