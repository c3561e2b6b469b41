"""Printing answers: rich tables for people, stable JSON and CSV for programs."""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def print_json(data: Any) -> None:
    """Stable JSON on stdout (sorted keys, ISO 8601 times)."""
    sys.stdout.write(
        orjson.dumps(data, default=_plain, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        .decode()
        + "\n"
    )


def print_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _plain(row.get(c)) for c in columns])


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                title: str | None = None) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(_plain(row.get(c))) for c in columns))
    console.print(table)


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool = False,
         as_csv: bool = False, title: str | None = None) -> None:
    """Rows as JSON, CSV or a rich table."""
    if as_json:
        print_json([{c: row.get(c) for c in columns} for row in rows])
    elif as_csv:
        print_csv(rows, columns)
    else:
        print_table(rows, columns, title)
