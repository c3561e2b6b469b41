"""The demo command's output: what was written, the stage counts, then the overview."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date

from lifecycle_es.cli.lifecycle_checks import print_overview
from lifecycle_es.cli.output import emit, say
from lifecycle_es.demo import check_empty, default_until, generate, write
from lifecycle_es.engine import ImportResult, LifecycleEngine
from lifecycle_es.reading.projection import queries


def run_demo(engine: LifecycleEngine, customers: int = 500, seed: int = 7,
             until: date | None = None) -> ImportResult:
    """Generate and write the demo history, then print a summary and the stage counts."""
    check_empty(engine)
    until = until or default_until()
    started = time.perf_counter()
    commands = generate(customers, seed, engine.stage_model, until)
    generated = time.perf_counter() - started
    result = write(engine, commands)
    print_summary(engine, result, customers, seed, until, generated)
    engine.projections.catch_up()
    print_stage_counts(engine)
    print_overview(engine)  # this year's metrics, the top gaps, the report command
    return result


def print_summary(engine: LifecycleEngine, result: ImportResult, customers: int, seed: int,
                  until: date, generated_s: float) -> None:
    say(
        f"demo: {customers} customers (seed {seed}, model {engine.stage_model.name}, history "
        f"ending before {until.isoformat()}) -> {result.events} events in "
        f"{generated_s + result.seconds:.2f}s into {engine.store.redacted()}"
    )
    rows = [{"type": t, "events": n} for t, n in Counter(result.by_type).most_common()]
    emit(rows, ["type", "events"], title="events written by type")


def print_stage_counts(engine: LifecycleEngine) -> None:
    rows = [{"stage": row["stage"], "customers": row["customers"]}
            for row in queries.stage_counts(engine.projections)]
    emit(rows, ["stage", "customers"], title="customers per stage (current_stage)")
