"""Printing answers: rich tables for people, stable JSON and CSV for programs.

Everything printed for people goes through :func:`inert`: stored values are shown literally
(no rich markup, no emoji codes, no terminal escape sequences; non-printable characters as
their escapes, see :mod:`lifecycle_es.display`). Never hand rich a ``str`` built from data.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
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
#: a text column is given up to this width on a narrow terminal before others are left out
WRAP_COLUMN = 16
#: a customer's name beside its id only helps to recognise the row: cut to fit (at most
#: LABEL_WIDTH wide), never wrapped
LABEL_WIDTH = 20


def _label(column: str, columns: Sequence[str]) -> bool:
    """Whether the column is a customer's name beside its id (elsewhere ``name`` is a key,
    e.g. a read model's)."""
    return column == "name" and "customer" in columns

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


def _as_text(value: Any) -> str:
    """What JSON cannot hold as it is, as text (a time in ISO 8601)."""
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


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


def print_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """CSV on stdout, row by row: the stored values exactly (nested values as JSON text with
    sorted keys, the same on every store), except on a terminal, where non-printable
    characters are shown as escapes (as ``ls`` does)."""
    shown = visible if sys.stdout.isatty() else (lambda v: v)
    writer = csv.writer(sys.stdout)
    writer.writerow([shown(c) for c in columns])
    for row in rows:
        writer.writerow(["" if row.get(c) is None else shown(csv_cell(row.get(c)))
                         for c in columns])


def csv_cell(value: Any) -> Any:
    """A value as CSV text: a dict or list as compact JSON (sorted keys), a time in ISO
    8601, anything else as it is."""
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=_as_text, option=orjson.OPT_SORT_KEYS).decode()
    return _plain(value)


def one_format(as_json: bool, as_csv: bool) -> None:
    """Refuse ``--json`` together with ``--csv`` (InvalidInput: exit 2)."""
    if as_json and as_csv:
        raise InvalidInput([FieldProblem("--csv", True, "choose one of --json and --csv")],
                           "options")


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 customer``, ``2 customers`` (``many`` for irregular plurals)."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


#: a UTC time as stored (ISO 8601): shown in tables as ``YYYY-MM-DD HH:MM``
_UTC_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(?:\+00:00|Z)")


def cell(value: Any) -> Any:
    """A value as a table shows it: a UTC time to the minute (``2025-03-01 10:00``), a
    nested value as compact JSON, anything else as it is."""
    if isinstance(value, datetime) and value.utcoffset() == timedelta(0):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, str) and (m := _UTC_TIME.fullmatch(value)):
        return f"{m[1]} {m[2]}"
    if isinstance(value, dict | list | tuple):
        return csv_cell(value)
    return _plain(value)


def duration(seconds: float) -> str:
    """A span for people: ``45m``, ``5h 03m``, ``3d 04h``."""
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days:,}d {hours:02d}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def _width(value: Any) -> int:
    return max((len(line) for line in visible(cell(value)).splitlines()), default=0)


def _whole(column: str, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the column is never wrapped: a key column, or one of times."""
    if column in KEY_COLUMNS:
        return True
    sample = [v for r in rows[:20] if (v := r.get(column)) is not None]
    return bool(sample) and all(isinstance(v, datetime) or (
        isinstance(v, str) and _UTC_TIME.fullmatch(v)) for v in sample)


def _needs(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, int]:
    """Each column's width on a narrow terminal, with its separator: key and time columns
    at full width; a customer's name at :data:`MIN_COLUMN` (it only fills what is left);
    the others at their full width up to :data:`WRAP_COLUMN` (longer text wraps)."""
    need = {}
    for c in columns:
        full = max([_width(c), *(_width(r.get(c)) for r in rows)])
        if _label(c, columns):
            need[c] = min(full, MIN_COLUMN) + 3
        elif _whole(c, rows):
            need[c] = full + 3
        else:
            need[c] = min(full, max(WRAP_COLUMN, len(c))) + 3
    return need


def fitting(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int,
            priority: Sequence[str] | None = None) -> list[str]:
    """The columns that fit ``width``, in their order (see :func:`_needs` for their
    widths); the columns left out first are the last of ``priority`` (most important
    first; default: ``columns``' order, so trailing columns go first). The first column
    always stays."""
    need = _needs(rows, columns)
    ranked = [c for c in (priority or columns) if c in need]
    ranked += [c for c in columns if c not in ranked]
    kept = set(columns)
    for c in reversed(ranked[1:]):
        if 1 + sum(need[k] for k in kept) <= width:
            break
        kept.discard(c)
    return [c for c in columns if c in kept]


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                title: str | None = None, priority: Sequence[str] | None = None) -> None:
    """A rich table fitting the terminal; every header, cell and the title shown inertly.
    Key and time columns are never cut; the columns that do not fit (the last of
    ``priority`` first) are named on stderr."""
    width = console.width
    shown = fitting(rows, columns, width, priority)
    need = _needs(rows, shown)
    table = Table(title=None if title is None else inert(title))
    for c in shown:
        full = max([_width(c), *(_width(r.get(c)) for r in rows)])
        if _label(c, shown):  # what the other columns leave, cut with an ellipsis
            spare = width - 1 - sum(n for k, n in need.items() if k != c) - 3
            roomy = 1 + sum(max([_width(k), *(_width(r.get(k)) for r in rows)]) + 3
                            for k in shown) <= width
            table.add_column(inert(c), no_wrap=True, overflow="ellipsis",
                             width=full if roomy else max(MIN_COLUMN,
                                                          min(full, LABEL_WIDTH, spare)))
        elif _whole(c, rows):
            table.add_column(inert(c), no_wrap=True, overflow="fold", min_width=full)
        else:
            table.add_column(inert(c), overflow="fold")
    for row in rows:
        table.add_row(*(inert(cell(row.get(c))) for c in shown))
    console.print(table)
    hidden = [c for c in columns if c not in shown]
    if hidden:
        say(f"({plural(len(hidden), 'column')} left out to fit {width} characters: "
            f"{', '.join(hidden)}; shown by --json or --csv, or on a wider terminal)",
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


#: rows a table shows unless ``--limit N`` or ``--all`` say otherwise
DEFAULT_LIMIT = 50

Limit = Annotated[int, typer.Option(
    "--limit", min=1, help="rows a table shows (--json and --csv give every row)")]
All = Annotated[bool, typer.Option("--all", help="a table shows every row")]


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool = False,
         as_csv: bool = False, title: str | None = None, record: bool = False,
         limit: int | None = None, total: int | None = None,
         priority: Sequence[str] | None = None) -> None:
    """Rows as JSON, CSV or a rich table (``record``: the one row as field/value lines).
    ``--json`` and ``--csv`` together are refused. A table shows the first ``limit`` rows
    (None: all) and says on stderr how many more there are (of ``total``, when ``rows``
    are already the first ones) and how to see them; ``priority`` ranks its columns for a
    narrow terminal (see :func:`fitting`)."""
    one_format(as_json, as_csv)
    if as_json:
        print_json([{c: row.get(c) for c in columns} for row in rows])
    elif as_csv:
        print_csv(rows, columns)
    elif record and len(rows) == 1:
        print_record(rows[0], columns, title)
    else:
        shown = rows if limit is None else rows[:limit]
        print_table(shown, columns, title, priority)
        more = (len(rows) if total is None else total) - len(shown)
        if more > 0:
            say(f"... and {more:,} more: --limit N, --all, --csv, --json", err=True)


def shown_rows(limit: int, every: bool) -> int | None:
    """The ``limit`` of :func:`emit` for the options ``--limit N`` and ``--all``."""
    return None if every else limit
