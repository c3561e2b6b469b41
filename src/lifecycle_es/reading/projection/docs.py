"""Markdown reference of read-model tables, generated from each ``Table.doc``.

``python -m lifecycle_es.reading.projection.docs docs/projections.md`` rewrites the part of the file
between the ``<!-- tables:begin -->`` and ``<!-- tables:end -->`` markers; a test checks the
file is current, so the documentation never drifts from the code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from lifecycle_es.reading.projection.base import COLUMN_TYPES, Projection

BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"


def tables_markdown(projections: Iterable[type[Projection]]) -> str:
    """One section per read model, one table per physical table, one row per column."""
    out: list[str] = []
    for p in sorted(projections, key=lambda c: c.name):
        out.append(f"### `{p.name}` (version {p.version})\n")
        if p.description:
            out.append(f"{p.description}\n")
        for t in p.tables:
            key = ", ".join(t.key)
            out.append(f"Table `{t.name}`, primary key ({key})"
                       + (f", one customer's rows: `{t.partition}`" if t.partition else "")
                       + ".\n")
            out.append("| column | type (SQLite / PostgreSQL) | meaning |")
            out.append("|---|---|---|")
            for col, typ in t.columns.items():
                lite, pg = COLUMN_TYPES[typ]
                meaning = t.doc.get(col, "").replace("|", "\\|") or "(undocumented)"
                out.append(f"| `{col}` | {typ} ({lite} / {pg}) | {meaning} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def render(text: str, projections: Iterable[type[Projection]]) -> str:
    """``text`` with the generated tables placed between the markers."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"markers {BEGIN} ... {END} not found")
    return f"{head}{BEGIN}\n{tables_markdown(projections)}{END}{tail}"


def builtin_projections() -> list[type[Projection]]:
    """The read models shipped in the built-in projections folder."""
    from lifecycle_es.reading.projection.registry import builtin_dir, discover

    return [c for c in discover().values()
            if Path(sys.modules[c.__module__].__file__ or "").parent == builtin_dir()]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path("docs/projections.md")
    path.write_text(render(path.read_text(), builtin_projections()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
