"""The cost of the import's check for repeated JSON keys (docs/import.md, "Strict JSON").

Generates a demo history (default 4,200 customers, about 105k lines of JSON Lines as the
import reads them), then times, in CPU seconds (best of N rounds, alternating, one process):

* ``parse``: ``parse_command(line, n)`` for every line, as the import parses (the strict
  ``at`` and date validators, and the repeated-key check);
* ``no key check``: the same validation without the repeated-key check.

Usage::

    python bench/strict_parse_bench.py [--customers 4200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson

from lifecycle_es.commands import _ADAPTER, parse_command
from lifecycle_es.demo import generate
from lifecycle_es.domain.stage_model import PRESETS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=4200)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    lines = [orjson.dumps(c).decode()
             for c in generate(args.customers, 7, PRESETS["classic"], date(2026, 11, 1))]
    variants: dict[str, Callable[[str, int], Any]] = {
        "parse": parse_command,
        "no key check": lambda text, _: _ADAPTER.validate_json(text),
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(args.rounds):
        for name, parse in variants.items():
            started = time.process_time()
            for n, text in enumerate(lines, 1):
                parse(text, n)
            best[name] = min(best[name], time.process_time() - started)
    base = best["no key check"]
    for name, seconds in best.items():
        print(f"{name}: {seconds:.3f} s CPU for {len(lines):,} lines "
              f"({seconds / len(lines) * 1e6:.2f} us a line, {seconds / base:.3f}x)")


if __name__ == "__main__":
    main()
