"""Printing answers: rich tables for people, stable JSON and CSV for programs.

Everything printed for people goes through :func:`inert`: stored values are shown literally
(no rich markup, no emoji codes, no terminal escape sequences; non-printable characters as
their escapes, see :mod:`lifecycle_es.display`). Never hand rich a ``str`` built from data.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lifecycle_es.display import escapes, json_visible, visible

# markup, emoji codes and highlighting off: a str that slips through is still shown as is
console = Console(markup=False, emoji=False, highlight=False)
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False)

#: how an escaped character is set apart on a terminal (plain text elsewhere)
ESCAPE_STYLE = "reverse"


def inert(value: Any) -> Text:
    """``value`` as rich text that shows exactly its characters (escapes for the
    non-printable ones, in :data:`ESCAPE_STYLE` on a terminal)."""
    text = Text()
    for piece, escaped in escapes("" if value is None else str(_plain(value))):
        text.append(piece, ESCAPE_STYLE if escaped else None)
    return text


def say(message: Any, *, err: bool = False) -> None:
    """Print one line (stdout, or stderr with ``err``) inertly, never wrapped or cut."""
    (err_console if err else console).print(inert(message), soft_wrap=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def print_json(data: Any) -> None:
    """Stable JSON on stdout (sorted keys, ISO 8601 times; non-printable characters as
    ``\\uXXXX`` escapes)."""
    text = orjson.dumps(data, default=_plain, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    sys.stdout.write(json_visible(text.decode()) + "\n")


def print_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """CSV on stdout: the stored values exactly, except on a terminal, where non-printable
    characters are shown as escapes (as ``ls`` does)."""
    shown = visible if sys.stdout.isatty() else (lambda v: v)
    writer = csv.writer(sys.stdout)
    writer.writerow([shown(c) for c in columns])
    for row in rows:
        writer.writerow(["" if row.get(c) is None else shown(_plain(row.get(c)))
                         for c in columns])


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                title: str | None = None) -> None:
    """A rich table; every header, cell and the title shown inertly."""
    table = Table(title=None if title is None else inert(title))
    for c in columns:
        table.add_column(inert(c), overflow="fold")
    for row in rows:
        table.add_row(*(inert(row.get(c)) for c in columns))
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
