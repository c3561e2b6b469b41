"""Printing answers: rich tables for people, stable JSON and CSV for programs.

Everything printed for people goes through :func:`inert`: stored values are shown literally
(no rich markup, no emoji codes, no terminal escape sequences; non-printable characters as
their escapes, see :mod:`lifecycle_es.display`). Never hand rich a ``str`` built from data.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lifecycle_es.display import escapes, json_visible, visible
from lifecycle_es.errors import FieldProblem, InvalidInput

Json = Annotated[bool, typer.Option("--json", help="print JSON (money in integer minor units)")]
Csv = Annotated[bool, typer.Option("--csv", help="print CSV (the same columns as --json)")]

#: columns that identify a row: never cut, so that rows stay distinguishable
KEY_COLUMNS = frozenset({"customer", "id", "handover_id", "aggregate", "position", "cohort",
                         "stage", "metric", "field", "name", "kind", "type", "model",
                         "currency", "correlation_id", "version"})
#: the narrowest a non-key column is squeezed to before columns are left out
MIN_COLUMN = 8

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


#: wraps every JSON answer of the running command (the CLI sets it: a query on a read store
#: answers ``{"result": ..., "read_models": {...}}``); None: answers as they are
json_envelope: Callable[[Any], Any] | None = None


def print_json(data: Any) -> None:
    """Stable JSON on stdout (sorted keys, ISO 8601 times; non-printable characters as
    ``\\uXXXX`` escapes)."""
    if json_envelope is not None:
        data = json_envelope(data)
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


def one_format(as_json: bool, as_csv: bool) -> None:
    """Refuse ``--json`` together with ``--csv`` (InvalidInput: exit 2)."""
    if as_json and as_csv:
        raise InvalidInput([FieldProblem("--csv", True, "choose one of --json and --csv")],
                           "options")


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 customer``, ``2 customers`` (``many`` for irregular plurals)."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _width(value: Any) -> int:
    return max((len(line) for line in visible(_plain(value)).splitlines()), default=0)


def fitting(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
            width: int) -> list[str]:
    """The leading columns that fit ``width``: key columns at their full width, the others
    squeezed down to :data:`MIN_COLUMN` (they wrap) before a column is left out."""
    shown: list[str] = []
    used = 1  # the left border
    for c in columns:
        full = max([_width(c), *(_width(r.get(c)) for r in rows)])
        need = (full if c in KEY_COLUMNS else min(full, max(MIN_COLUMN, len(c)))) + 3
        if shown and used + need > width:
            break
        shown.append(c)
        used += need
    return shown


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                title: str | None = None) -> None:
    """A rich table fitting the terminal; every header, cell and the title shown inertly.
    Key columns are never cut; columns that do not fit are named on stderr."""
    shown = fitting(rows, columns, console.width)
    table = Table(title=None if title is None else inert(title))
    for c in shown:
        if c in KEY_COLUMNS:
            table.add_column(inert(c), no_wrap=True, overflow="fold",
                             min_width=max([_width(c), *(_width(r.get(c)) for r in rows)]))
        else:
            table.add_column(inert(c), overflow="fold")
    for row in rows:
        table.add_row(*(inert(row.get(c)) for c in shown))
    console.print(table)
    hidden = [c for c in columns if c not in shown]
    if hidden:
        say(f"({plural(len(hidden), 'column')} left out to fit {console.width} characters: "
            f"{', '.join(hidden)}; shown by --json, or on a wider terminal)",
            err=True)


def print_record(row: Mapping[str, Any], columns: Sequence[str],
                 title: str | None = None) -> None:
    """One record as ``field  value`` lines (values wrap, fields line up)."""
    if title is not None:
        say(title)
    pad = max((len(c) for c in columns), default=0)
    for c in columns:
        value = row.get(c)
        say(f"{c.ljust(pad)}  {'' if value is None else _plain(value)}")


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool = False,
         as_csv: bool = False, title: str | None = None, record: bool = False) -> None:
    """Rows as JSON, CSV or a rich table (``record``: the one row as field/value lines).
    ``--json`` and ``--csv`` together are refused."""
    one_format(as_json, as_csv)
    if as_json:
        print_json([{c: row.get(c) for c in columns} for row in rows])
    elif as_csv:
        print_csv(rows, columns)
    elif record and len(rows) == 1:
        print_record(rows[0], columns, title)
    else:
        print_table(rows, columns, title)
