"""Inline SVG charts made in Python: no script, no network, they render in any browser.

Every mark carries its number in ``data-*`` attributes (``data-label``, ``data-value``...),
so tests (and curious readers) can check the picture against the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lifecycle_es.display import html_text

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


#: a chart grows with its card up to this scale (its text stays under 16 px)
MAX_SCALE = 1.25


def _open(chart: str, width: float, height: float, extra: str = "") -> str:
    """The <svg> tag of a chart that scales to the width of its card (``svg.chart`` CSS:
    width 100%, height from the view box), up to :data:`MAX_SCALE`."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{_a(chart)}" '
            f'viewBox="0 0 {_num(width)} {_num(height)}" preserveAspectRatio="xMinYMin meet" '
            f'style="max-width:{_num(width * MAX_SCALE)}px" role="img" {extra}{FONT}>')


def _a(value: object) -> str:
    """An attribute value, escaped."""
    return html_text(value)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Bar:
    """One bar: label (its ``data-label``), value, the text shown after it, optional colour,
    and the label shown to people when it differs from ``label``."""

    label: str
    value: float
    text: str | None = None
    color: str | None = None
    label_text: str | None = None


def hbars(chart: str, bars: Sequence[Bar], *, width: int = 640, label_width: int = 150,
          empty: str = "no data") -> str:
    """A horizontal bar chart, one row per bar, scaled to the largest value."""
    if not bars:
        return _empty(chart, empty)
    row, top = 26, 8
    height = top * 2 + row * len(bars)
    # room after the longest bar for its text (about 7 px a character at 12 px)
    room = 12 + 7 * max(len(b.text if b.text is not None else str(b.value)) for b in bars)
    span = max(40, width - label_width - room)
    peak = max((b.value for b in bars), default=0) or 1
    parts = [_open(chart, width, height)]
    for i, b in enumerate(bars):
        y = top + i * row
        w = max(0.0, span * b.value / peak)
        color = b.color or PALETTE[0]
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end">'
            f'{html_text(b.label_text or b.label)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{_num(w)}" height="18" '
            f'rx="3" fill="{color}" data-label="{_a(b.label)}" data-value="{_a(b.value)}">'
            f'<title>{html_text(b.label_text or b.label)}: '
            f'{html_text(b.text or str(b.value))}</title></rect>'
            f'<text x="{_num(label_width + w + 6)}" y="{y + 16}" fill="#374151">'
            f'{html_text(b.text if b.text is not None else str(b.value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def lines(chart: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]], *,
          width: int = 640, height: int = 240, y_min: float | None = None,
          y_max: float | None = None, unit: str = "", empty: str = "no data",
          y_title: str = "", ticks: Callable[[float, float], str] | None = None,
          x_text: Callable[[str], str] = str, extra: str = "") -> str:
    """A line chart: one line per series over the x ``labels``; None leaves a gap.
    ``y_title`` labels the y axis; ``ticks(value, step)`` writes its tick labels;
    ``x_text`` the x labels."""
    values = [v for s in series.values() for v in s if v is not None]
    if not labels or not values:
        return _empty(chart, empty)
    tick_text = ticks or _tick
    left, right, top, bottom = 64, 36, 12 + (16 if y_title else 0), 40
    lo, hi, tick = _nice_range(min(values) if y_min is None else y_min,
                               max(values) if y_max is None else y_max)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w * i / (len(labels) - 1) if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [_open(chart, width, height + 18 * max(0, len(series) - 1), extra)]
    if y_title:
        parts.append(f'<text x="{left - 6}" y="14" text-anchor="end" font-weight="600" '
                     f'fill="#374151">{html_text(y_title)}</text>')
    v = lo
    while v <= hi + tick / 2:  # horizontal grid with y ticks
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y(v))}" '
                     f'y2="{_num(y(v))}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{_num(y(v) + 4)}" text-anchor="end" '
                     f'fill="#6b7280">{html_text(tick_text(v, tick))}{html_text(unit)}</text>')
        v += tick
    step = max(1, math.ceil(len(labels) / max(2, plot_w // 70)))
    for i, label in enumerate(labels):
        if i % step == 0:
            parts.append(f'<text x="{_num(x(i))}" y="{height - bottom + 18}" '
                         f'text-anchor="middle" fill="#6b7280">{html_text(x_text(label))}</text>')
    for n, (name, points) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        parts.append(f'<g class="series" data-series="{_a(name)}">')
        run: list[str] = []
        for i, point in enumerate([*points, None]):
            if point is None:
                if len(run) > 1:
                    parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                                 f'points="{" ".join(run)}"/>')
                run = []
                continue
            run.append(f"{_num(x(i))},{_num(y(point))}")
        for i, point in enumerate(points):
            if point is not None:
                parts.append(f'<circle class="point" cx="{_num(x(i))}" cy="{_num(y(point))}" r="3" '
                             f'fill="{color}" data-label="{_a(labels[i])}" '
                             f'data-value="{_a(point)}"><title>{html_text(name)} '
                             f'{html_text(labels[i])}: '
                             f'{html_text(_num(point))}{html_text(unit)}</title></circle>')
        parts.append("</g>")
        if len(series) > 1:  # legend under the axis
            ly = height + 18 * n - 4
            parts.append(f'<rect x="{left}" y="{ly - 9}" width="10" height="10" '
                         f'fill="{color}"/><text x="{left + 16}" y="{ly}">{html_text(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap(chart: str, rows: Sequence[tuple[str, int, Sequence[float]]], *,
            cell: int = 30, empty: str = "no data") -> str:
    """Cohort retention: one row per (label, size, shares 0..1), one column per month k."""
    if not rows:
        return _empty(chart, empty)
    cols = max(len(shares) for _, _, shares in rows)
    left, top = 130, 22
    width, height = left + cell * cols + 8, top + cell * len(rows) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart grid" '
             f'data-chart="{_a(chart)}" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" font-family="system-ui, sans-serif" font-size="11">']
    for k in range(cols):
        parts.append(f'<text x="{left + k * cell + cell / 2}" y="{top - 8}" '
                     f'text-anchor="middle" fill="#6b7280">{k}</text>')
    for r, (label, size, shares) in enumerate(rows):
        y = top + r * cell
        parts.append(f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end">'
                     f'{html_text(label)} ({size})</text>')
        for k, share in enumerate(shares):
            light = round(95 - 55 * share)
            ink = "#ffffff" if share > 0.55 else "#111827"
            parts.append(
                f'<rect class="cell" x="{left + k * cell}" y="{y}" width="{cell - 2}" '
                f'height="{cell - 2}" fill="hsl(217, 80%, {light}%)" data-row="{_a(label)}" '
                f'data-col="{k}" data-value="{_a(round(share, 6))}"><title>{html_text(label)} '
                f'month {k}: {share:.0%}</title></rect>'
                f'<text x="{left + k * cell + cell / 2 - 1}" y="{y + cell / 2 + 3}" '
                f'text-anchor="middle" fill="{ink}">{round(100 * share)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _nice_range(lo: float, hi: float, ticks: int = 4) -> tuple[float, float, float]:
    """Axis bounds widened to round numbers, and the step between ``ticks`` grid lines."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _tick(value: float, step: float) -> str:
    return f"{value:,.0f}" if step >= 1 else _num(value)


def _empty(chart: str, text: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart empty" '
            f'data-chart="{_a(chart)}" viewBox="0 0 640 40" width="640" height="40" {FONT}>'
            f'<text x="8" y="24" fill="#6b7280">{html_text(text)}</text></svg>')


def short_number(value: float, step: float) -> str:
    """Tick text for large numbers: ``400k``, ``1.2M``."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size or (step >= size and value != 0):
            return f"{value / size:,.{0 if step >= size else 1}f}{suffix}"
    return _tick(value, step)
