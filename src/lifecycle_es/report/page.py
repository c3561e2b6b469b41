"""The report page: inline CSS, inline SVG charts, tables, and the JSON data island."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson

from lifecycle_es.display import html_text, json_visible
from lifecycle_es.report.svg import Bar, hbars, heatmap, lines

BAND_COLORS = {"healthy": "#16a34a", "at risk": "#d97706", "critical": "#dc2626"}
MAX_GAP_ROWS = 500
WORST_HEALTH_ROWS = 15

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;
background:#f3f4f6}
header{background:#111827;color:#f9fafb;padding:20px 32px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#d1d5db;font-size:13px}
main{max-width:1100px;margin:0 auto;padding:20px 32px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:0 0 18px;
box-shadow:0 1px 2px rgba(0,0,0,.06)}
h2{font-size:16px;margin:0 0 4px}h3{font-size:14px;margin:14px 0 6px}
p.note{color:#6b7280;font-size:12px;margin:0 0 10px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.kpi{background:#f9fafb;border-radius:6px;padding:10px 12px}
.kpi b{display:block;font-size:20px}.kpi span{font-size:12px;color:#6b7280}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
svg.chart{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{background:#f9fafb;position:sticky;top:0}td:nth-child(-n+3){white-space:nowrap}
.band{padding:1px 6px;border-radius:9px;color:#fff;font-size:11px}
.scroll{max-height:520px;overflow:auto}
"""


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _money(minor: float) -> str:
    return f"{minor / 100:,.2f}"


def _when(iso: str) -> str:
    """ISO 8601 UTC text as 'YYYY-MM-DD HH:MM'."""
    return iso[:16].replace("T", " ")


def _section(title: str, note: str, body: str, key: str) -> str:
    return (f'<section id="{key}" data-section="{key}"><h2>{html_text(title)}</h2>'
            f'<p class="note">{html_text(note)}</p>{body}</section>')


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], key: str) -> str:
    head = "".join(f"<th>{html_text(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html_text('' if r.get(c) is None else r.get(c))}</td>"
                         for c in columns) + "</tr>"
        for r in rows
    )
    return (f'<div class="scroll"><table data-table="{key}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _kpis(d: dict[str, Any]) -> str:
    s = d["summary"]
    items = [
        (str(d["customers"]), "customers (as of)"),
        (str(s["paying_at_end"]), "paying at period end"),
        (_pct(s["retention_rate"]), "customer retention"),
        (_pct(s["churn_rate"]), "churn rate"),
    ]
    for r in s["revenue"]:
        items.append((f"{_pct(r['grr'])} / {_pct(r['nrr'])}", f"GRR / NRR ({r['currency']})"))
    nps = s["nps"]["score"]
    items.append(("n/a" if nps is None else f"{nps:.1f}", f"NPS ({s['nps']['answers']} answers)"))
    items.append((_pct(s["csat"]["share"]), f"CSAT ({s['csat']['answers']} answers)"))
    for cur, mrr in d["mrr_now"].items():
        items.append((_money(mrr), f"MRR now ({cur})"))
    items.append((str(len(d["gaps"]["rows"])), "open gaps"))
    return '<div class="kpis">' + "".join(
        f'<div class="kpi" data-kpi="{html_text(label)}"><b>{html_text(value)}</b>'
        f"<span>{html_text(label)}</span></div>" for value, label in items
    ) + "</div>"


def _funnel(d: dict[str, Any]) -> str:
    bars = []
    for st in d["funnel"]["stages"]:
        conv = st["conversion_to_next"]
        text = f"{st['reached']}" + (f"  → {_pct(conv, 0)} next" if conv is not None else "")
        if st["skipped"]:
            text += f"  ({st['skipped']} skipped)"
        bars.append(Bar(st["stage"], st["reached"], text))
    return hbars("funnel", bars)


def _mrr(d: dict[str, Any]) -> str:
    months = sorted({p["month"] for p in d["mrr"]})
    by_cur: dict[str, dict[str, float]] = defaultdict(dict)
    for p in d["mrr"]:
        by_cur[p["currency"]][p["month"]] = p["mrr"] / 100
    series = {cur: [vals.get(m) for m in months] for cur, vals in sorted(by_cur.items())}
    return lines("mrr", months, series, y_min=0, empty="no MRR yet")


def _nps(d: dict[str, Any]) -> str:
    months = [p["month"] for p in d["nps"]]
    scores = [p["score"] for p in d["nps"]]
    return lines("nps", months, {"NPS": scores}, y_min=-100, y_max=100, empty="no NPS answers")


def _cohorts(d: dict[str, Any]) -> str:
    rows = [(r["cohort"], r["size"], r["shares"]) for r in d["cohorts"]["rows"]]
    return heatmap("cohorts", rows, empty="no complete cohort month yet")


def _health(d: dict[str, Any]) -> str:
    h = d["health"]
    bars = hbars("health", [Bar(b, n, str(n), BAND_COLORS[b]) for b, n in h["bands"].items()])
    worst = []
    for c in h["customers"][:WORST_HEALTH_ROWS]:
        why = ", ".join(f"{k} {v['contribution']:g}" for k, v in c["factors"].items())
        worst.append({"customer": c["customer"], "score": c["score"], "band": c["band"],
                      "stage": c["stage"], "owner": c["owner"], "contributions": why})
    return bars + "<h3>Lowest scores</h3>" + _table(
        worst, ("customer", "score", "band", "stage", "owner", "contributions"), "health")


def _gaps(d: dict[str, Any]) -> str:
    g = d["gaps"]
    bars = hbars("gaps", [Bar(k, n) for k, n in g["by_kind"].items()])
    rows = [{**r, "since": _when(r["since"])} for r in g["rows"][:MAX_GAP_ROWS]]
    more = len(g["rows"]) - len(rows)
    cols = ("customer", "kind", "since", "days_open", "team", "owner", "stage", "detail")
    note = f'<p class="note">and {more} more (see lifecycle-es gaps)</p>' if more > 0 else ""
    return bars + _table(rows, cols, "gaps") + note


def render(d: dict[str, Any]) -> str:
    """The whole HTML document for the report data ``d``."""
    period = f"{d['period']['from'][:10]} → {d['period']['to'][:10]}"
    stages = hbars("stages", [Bar(s["stage"], s["customers"], f"{s['customers']}  "
                                  f"({s['team']})") for s in d["stages"]])
    band_note = ", ".join(f"{k} ≥ {v:g}" for k, v in d["health"]["thresholds"].items())
    body = "".join([
        _section("Key figures", f"period {period} (end exclusive); 'now' means as of "
                 f"{_when(d['as_of'])} UTC", _kpis(d), "kpis"),
        '<div class="grid2">',
        _section("Stage distribution", "customers per stage, as of the report time",
                 stages, "stages"),
        _section("Funnel", "customers who reached each stage in the period (cumulative: "
                 "a skipped stage counts as reached), and conversion to the next",
                 _funnel(d), "funnel"),
        "</div>",
        _section("MRR over time", "total MRR at the end of each month, per currency "
                 "(major units)", _mrr(d), "mrr"),
        _section("NPS over time", "NPS of the answers given each month (-100..100)",
                 _nps(d), "nps"),
        _section("Cohort retention", "customers by month of first purchase: share paying "
                 "at the end of each month after (column k)", _cohorts(d), "cohorts"),
        _section("Health", f"health scores of paying customers; bands: {band_note}, "
                 "else critical", _health(d), "health"),
        _section("Gaps", "customers left hanging between teams, oldest first", _gaps(d),
                 "gaps"),
    ])
    # no "<" at all in the data island: neither "</script>" nor "<!--" can end or change it
    data = json_visible(orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode()).replace(
        "<", "\\u003c")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Lifecycle report {html_text(period)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>Customer lifecycle report</h1><p>period {html_text(period)} · as of "
        f"{html_text(_when(d['as_of']))} UTC · stage model {html_text(d['stage_model'])} · "
        "generated "
        f"{html_text(d['generated_at'][:19])} UTC</p></header><main>{body}</main>"
        f'<script type="application/json" id="report-data">{data}</script></body></html>'
    )
