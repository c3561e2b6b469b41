"""Pause Python's cyclic garbage collector around bulk work.

A bulk import allocates millions of long-lived objects (commands, events, aggregates) that form
no reference cycles. The cyclic collector still walks all of them in every full collection, and
full collections come more often as the heap grows, so a 1M-event import spends a large share
of its time (and, on PostgreSQL, pauses of seconds inside a write transaction) in collections
that free nothing. Reference counting still frees everything as usual; cycles created meanwhile
are collected once the collector is back on. Measured in bench/import_bench.py (--no-gc).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def without_cyclic_gc(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with the cyclic collector off (restored after, even on error)."""

    @wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        was_on = gc.isenabled()
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            if was_on:
                gc.enable()

    return run
