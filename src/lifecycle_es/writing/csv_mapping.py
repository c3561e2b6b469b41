"""CSV import with a mapping (``lifecycle-es import FILE.csv --mapping MAP.toml``).

A mapping (TOML, docs/import.md) names, per row kind, the command type and which column
fills which field, with conversions: dates and times in a given format (and time zone),
amounts in major units turned into minor units of their currency, integers, booleans,
values translated (``map``), constants. A column may select each row's kind. Each row
becomes one JSON Lines command at the CSV line where the row starts, so the import path
checks, numbers and records it exactly as a JSON Lines import (all or nothing, once only);
a problem names the CSV line and the column.
"""

from __future__ import annotations

import csv
import io
import re
from array import array
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from lifecycle_es.commands import COMMANDS
from lifecycle_es.config import load_toml
from lifecycle_es.errors import FieldProblem

#: digits after the decimal point of currencies that do not have two (ISO 4217)
EXPONENTS = {"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0,
             "KRW": 0, "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0,
             "XAF": 0, "XOF": 0, "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3,
             "LYD": 3, "OMR": 3, "TND": 3}
#: the longest cell converted (a number, a date): longer ones are refused
CELL_CHARS = 64
#: the largest CSV field read (characters): the commands' own limits are far below
FIELD_LIMIT = 1 << 20
_INTEGER = re.compile(r"[+-]?\d{1,19}")
_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")


class FieldSpec(BaseModel):
    """How one field of a command is filled: from a ``column`` (converted ``as`` said) or
    a constant ``value``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str | None = Field(None, min_length=1, max_length=200)
    value: str | int | bool | None = None
    #: used when the column's cell is empty (else the field is left out)
    default: str | None = None
    as_: Literal["text", "integer", "money", "date", "time", "boolean"] = Field(
        "text", alias="as")
    #: strptime format of a date or time (default: ISO 8601)
    format: str | None = Field(None, max_length=100)
    #: the time zone of a time without an offset (IANA name)
    timezone: str = "UTC"
    #: money: the currency of the amount (default: the row's ``currency`` field)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    #: money: the decimal and thousands separators of the amounts
    decimal: Literal[".", ","] = "."
    thousands: Literal[",", ".", " ", "'", ""] = ","
    #: cell values translated before conversion (e.g. a CRM's stage names)
    map: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        if (self.column is None) == (self.value is None):
            raise ValueError("give either column or value")
        if self.decimal == self.thousands:
            raise ValueError("decimal and thousands separators must differ")
        return self

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone name (e.g. UTC, Europe/Berlin)") from None
        return name


def _column_name(value: Any) -> Any:
    """A bare string in a mapping names a column."""
    return {"column": value} if isinstance(value, str) else value


#: a field's spec: a table, or a bare string naming a column
Spec = Annotated[FieldSpec, BeforeValidator(_column_name)]


class RowKind(BaseModel):
    """One kind of row: its command type, the values of the kind column that select it,
    and its fields."""

    model_config = ConfigDict(extra="forbid")

    type: str
    when: list[str] | None = None
    fields: dict[str, Spec] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known(cls, type_: str) -> str:
        if type_ not in COMMANDS:
            raise ValueError(f"unknown command type (known: {', '.join(COMMANDS)})")
        return type_


class Mapping(BaseModel):
    """A CSV mapping file (docs/import.md)."""

    model_config = ConfigDict(extra="forbid")

    #: the column whose value selects the row kind (none: the one kind of the mapping)
    kind_column: str | None = Field(None, min_length=1)
    #: values of the kind column whose rows are skipped
    skip: list[str] = Field(default_factory=list)
    delimiter: str = Field(",", min_length=1, max_length=1)
    #: fields every kind gets (a kind's own fields win)
    defaults: dict[str, Spec] = Field(default_factory=dict)
    kinds: dict[str, RowKind] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        if self.kind_column is None and len(self.kinds) > 1:
            raise ValueError("several kinds need a kind_column to choose between them")
        for name, kind in self.kinds.items():
            fields = COMMANDS[kind.type].model_fields
            for field in {**self.defaults, **kind.fields}:
                if field not in fields or field == "type":
                    raise ValueError(f"kinds.{name}.fields.{field}: {kind.type} has no "
                                     f"field {field!r} (fields: {', '.join(fields)})")
        return self

    def fields_of(self, kind: str) -> dict[str, FieldSpec]:
        """The fields of ``kind``, defaults included, each as a :class:`FieldSpec`."""
        return {**self.defaults, **self.kinds[kind].fields}

    def selector(self) -> dict[str, str]:
        """Kind column value -> kind."""
        return {value: name for name, kind in self.kinds.items()
                for value in (kind.when if kind.when is not None else [name])}


def load_mapping(path: str | Path) -> Mapping:
    """The mapping in TOML file ``path`` (ConfigError naming the key and value)."""
    return load_toml(Mapping, path, "mapping")


class CsvRows:
    """The rows of a CSV file as JSON Lines commands, one at the CSV line where its row
    starts (blank lines between), for ``import_lines``; conversion problems go to
    ``problems``, and :meth:`column_of` names the column behind a field of a line."""

    def __init__(self, path: str, mapping: Mapping, problems: list[FieldProblem]) -> None:
        self.path = path
        self.mapping = mapping
        self.problems = problems
        self._kinds = list(mapping.kinds)
        self._specs = {k: mapping.fields_of(k) for k in self._kinds}
        self._kind_of_line = array("l")  # line -> kind index + 1 (0: none)
        #: (line, field) whose cell could not be converted (the field was left out)
        self.failed: set[tuple[int, str]] = set()

    def column_of(self, line: int | None, field: str) -> str | None:
        """The column that filled ``field`` on CSV ``line``, if a column did."""
        if line is None or not 0 < line < len(self._kind_of_line):
            return None
        index = self._kind_of_line[line]
        if not index:
            return None
        spec = self._specs[self._kinds[index - 1]].get(field.split(".")[0])
        return spec.column if spec is not None else None

    def __iter__(self) -> Iterator[bytes]:
        csv.field_size_limit(FIELD_LIMIT)
        with open(self.path, encoding="utf-8-sig", newline="") as fh:
            source = _Counted(fh)
            reader = csv.reader(source, delimiter=self.mapping.delimiter)
            try:
                header = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                self._problem(1, "header", None, _why(exc))
                return
            if header is None:
                self._problem(1, "header", None, "the file is empty")
                return
            yield b"\n"
            columns = {name.strip(): i for i, name in enumerate(header)}
            if not self._columns_known(columns):
                return
            emitted = 1
            selector = self.mapping.selector()
            while True:
                start = source.lines + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    self._problem(start, "row", None, _why(exc))
                    return
                while emitted < start - 1:  # blank lines keep line numbers in step
                    emitted += 1
                    yield b"\n"
                emitted += 1
                self._kind_of_line.extend([0] * (start + 1 - len(self._kind_of_line)))
                yield self._command(start, row, columns, selector)

    def _columns_known(self, columns: dict[str, int]) -> bool:
        wanted = {s.column for specs in self._specs.values() for s in specs.values()
                  if s.column is not None}
        if self.mapping.kind_column is not None:
            wanted.add(self.mapping.kind_column)
        missing = sorted(wanted - set(columns))
        for name in missing:
            self._problem(1, name, None, f"no such column in the header (columns: "
                                         f"{', '.join(columns)})")
        return not missing

    def _command(self, line: int, row: list[str], columns: dict[str, int],
                 selector: dict[str, str]) -> bytes:
        if not any(cell.strip() for cell in row):
            return b"\n"
        kind = self._kinds[0]
        kind_column = self.mapping.kind_column
        if kind_column is not None:
            value = _cell(row, columns[kind_column])
            if value in self.mapping.skip:
                return b"\n"
            if value not in selector:
                self._problem(line, kind_column, value, "selects no row kind of the mapping "
                              f"(known: {', '.join(selector)}; skip: "
                              f"{', '.join(self.mapping.skip) or 'none'})")
                return b"\n"
            kind = selector[value]
        self._kind_of_line[line] = self._kinds.index(kind) + 1
        out: dict[str, Any] = {"type": self.mapping.kinds[kind].type}
        specs = self._specs[kind]
        money = []
        for field, spec in specs.items():
            if spec.as_ == "money" and spec.column is not None:
                money.append((field, spec))  # after the others: it may need the currency
                continue
            self._fill(out, line, row, columns, field, spec)
        for field, spec in money:
            self._fill(out, line, row, columns, field, spec)
        return orjson.dumps(out, default=str)

    def _fill(self, out: dict[str, Any], line: int, row: list[str], columns: dict[str, int],
              field: str, spec: FieldSpec) -> None:
        if spec.column is None:
            out[field] = spec.value
            return
        cell = _cell(row, columns[spec.column])
        cell = spec.map.get(cell, cell)
        if cell == "":
            if spec.default is None:
                return  # left out: the command says whether it is required
            cell = spec.default
        try:
            out[field] = convert(cell, spec, out.get("currency"))
        except ValueError as exc:
            self._problem(line, f"{spec.column} ({field})", cell, str(exc))
            self.failed.add((line, field))

    def _problem(self, line: int, field: str, value: Any, reason: str) -> None:
        self.problems.append(FieldProblem(field, value, reason, line))


def convert(cell: str, spec: FieldSpec, row_currency: Any = None) -> Any:
    """One cell as its field's value (ValueError saying why not)."""
    if spec.as_ == "text":
        return cell
    if len(cell) > CELL_CHARS:
        raise ValueError(f"longer than {CELL_CHARS} characters")
    text = cell.strip()
    if spec.as_ == "integer":
        if not _INTEGER.fullmatch(text):
            raise ValueError("not a whole number")
        return int(text)
    if spec.as_ == "boolean":
        if text.lower() not in _TRUE + _FALSE:
            raise ValueError(f"not a boolean ({'/'.join(_TRUE)} or {'/'.join(_FALSE)})")
        return text.lower() in _TRUE
    if spec.as_ == "money":
        return minor_units(text, spec, spec.currency or row_currency)
    if spec.as_ == "date":
        return _parsed(text, spec).date().isoformat() if spec.format else \
            date.fromisoformat(text).isoformat()
    moment = _parsed(text, spec)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(spec.timezone))
    return moment.isoformat()


def _parsed(text: str, spec: FieldSpec) -> datetime:
    try:
        return datetime.strptime(text, spec.format) if spec.format else \
            datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a {spec.as_} in the format {spec.format or 'ISO 8601'}") \
            from None


def minor_units(text: str, spec: FieldSpec, currency: Any) -> int:
    """An amount in major units (``1,234.50``) as an integer of minor units (123450) of
    ``currency`` (its ISO 4217 exponent); more decimals than the currency has are refused."""
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError("no currency to convert from major units (give the mapping's "
                         "currency, or fill the command's currency field)")
    plain = text.replace(spec.thousands, "") if spec.thousands else text
    plain = plain.replace(spec.decimal, ".")
    if not re.fullmatch(r"[+-]?\d+(\.\d+)?", plain):
        raise ValueError(f"not an amount in major units (e.g. 1{spec.thousands}234"
                         f"{spec.decimal}50)")
    exponent = EXPONENTS.get(currency, 2)
    try:
        amount = Decimal(plain).scaleb(exponent)
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if amount != amount.to_integral_value():
        raise ValueError(f"more decimals than {currency} has ({exponent})")
    return int(amount)


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text (save the export as UTF-8)"
    return f"not readable as CSV: {exc}"


class _Counted:
    """A text file's lines, counted as the CSV reader takes them (a quoted field may span
    lines: a row starts at the line after the last one read for the previous row)."""

    def __init__(self, fh: io.TextIOBase | Any) -> None:
        self._fh = fh
        self.lines = 0

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> str:
        line: str = next(self._fh)
        self.lines += 1
        return line
