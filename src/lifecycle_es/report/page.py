"""The report page: inline CSS, inline SVG charts and tables; nothing it does not show."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lifecycle_es.display import html_text, major_units, money_text
from lifecycle_es.report.labels import gap_kind, words
from lifecycle_es.report.svg import Bar, hbars, heatmap, lines, short_number
from lifecycle_es.report.tables import BAND_COLORS, act_first, gaps_table, health_table
from lifecycle_es.report.urgency import KIND_ORDER

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;
background:#f3f4f6}
header{background:#111827;color:#f9fafb;padding:20px 32px}
header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#d1d5db;font-size:13px}
header p.privacy{margin-top:6px;color:#fcd34d}
main{max-width:1100px;margin:0 auto;padding:20px 32px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:0 0 18px;
box-shadow:0 1px 2px rgba(0,0,0,.06);min-width:0}
h2{font-size:16px;margin:0 0 4px}h3{font-size:14px;margin:14px 0 6px}
p.note{color:#6b7280;font-size:12px;margin:0 0 10px}
p.why{background:#fffbeb;border-left:3px solid #d97706;padding:6px 10px;font-size:13px;
margin:10px 0 0}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px}
.kpi{background:#f9fafb;border-radius:6px;padding:10px 12px}
.kpi b{display:block;font-size:20px}.kpi span{display:block;font-size:12px;color:#6b7280}
.delta{font-size:12px;margin-top:2px}.good{color:#15803d}.bad{color:#b91c1c}
.same{color:#6b7280}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
.grid2>section{margin:0 0 18px}
.multiples{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:14px}
.multiples h3{margin:4px 0}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
svg.chart{display:block;width:100%;height:auto}
svg.chart.grid,svg.chart.empty{width:auto;max-width:100%}
.first{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
.first ol{margin:4px 0 0;padding-left:20px;font-size:13px}.first li{margin:0 0 6px}
.first .action{font-size:12px;color:#6b7280;margin:0}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{background:#f9fafb;position:sticky;top:0}
td.num,th.num{text-align:right;white-space:nowrap}td.who{min-width:150px}td.nowrap{white-space:nowrap}
.id{color:#6b7280;font-size:11px;white-space:nowrap}.erased{color:#6b7280;font-style:italic}
.band{padding:1px 6px;border-radius:9px;color:#fff;font-size:11px;white-space:nowrap}
.factor{display:block;width:64px;height:8px;background:#e5e7eb;border-radius:4px;
overflow:hidden;margin:3px 0 2px}.factor i{display:block;height:100%}
.factor-text{font-size:11px;color:#374151;white-space:nowrap}
.scroll{max-height:560px;overflow:auto}
footer{max-width:1100px;margin:0 auto;padding:0 32px 24px;font-size:12px;color:#6b7280}
@media print{
body{background:#fff}header{background:#fff;color:#111827;border-bottom:2px solid #111827}
header p{color:#374151}header p.privacy{color:#92400e}main{max-width:none;padding:0}
section{box-shadow:none;border:1px solid #e5e7eb;break-inside:avoid}
section.long{break-inside:auto}.scroll{max-height:none;overflow:visible}th{position:static}
.grid2{grid-template-columns:1fr 1fr}}
"""


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def when(iso: str) -> str:
    """ISO 8601 UTC text as 'YYYY-MM-DD HH:MM'."""
    return iso[:16].replace("T", " ")


def _section(title: str, note: str, body: str, key: str, css: str = "") -> str:
    extra = f' class="{css}"' if css else ""
    return (f'<section id="{key}" data-section="{key}"{extra}><h2>{html_text(title)}</h2>'
            f'<p class="note">{html_text(note)}</p>{body}</section>')


# ------------------------------------------------------------------ key figures


def _delta(now: float | None, before: float | None, *, kind: str, better: str,
           currency: str | None = None) -> str:
    """▲/▼ and the difference to the previous period (``kind``: pct, count, score, money;
    ``better``: up, down or neutral)."""
    if now is None or before is None:
        return '<div class="delta same">no previous figure</div>'
    diff = now - before
    if kind == "pct":
        size, was = f"{abs(100 * diff):.1f} pp", pct(before)
    elif kind == "score":
        size, was = f"{abs(diff):.1f}", f"{before:.1f}"
    elif kind == "money":
        size, was = money_text(abs(diff), currency), money_text(before, currency)
    else:
        size, was = f"{abs(diff):,.0f}", f"{before:,.0f}"
    if round(diff, 6) == 0:
        return f'<div class="delta same">= same as before ({html_text(was)})</div>'
    arrow = "▲" if diff > 0 else "▼"
    tone = "same" if better == "neutral" else (
        "good" if (diff > 0) == (better == "up") else "bad")
    return (f'<div class="delta {tone}" data-delta="{html_text(round(diff, 6))}">'
            f"{arrow} {html_text(size)} <span>vs {html_text(was)}</span></div>")


def _kpis(d: dict[str, Any]) -> str:
    s, p = d["summary"], d["previous"]
    ps = p["summary"]
    items: list[tuple[str, str, str]] = [
        (f"{d['customers']:,}", "customers (as of)",
         _delta(d["customers"], p["customers"], kind="count", better="neutral")),
        (f"{s['paying_at_end']:,}", "paying at period end",
         _delta(s["paying_at_end"], ps["paying_at_end"], kind="count", better="up")),
        (pct(s["retention_rate"]), "customer retention",
         _delta(s["retention_rate"], ps["retention_rate"], kind="pct", better="up")),
        (pct(s["churn_rate"]), "churn rate",
         _delta(s["churn_rate"], ps["churn_rate"], kind="pct", better="down")),
    ]
    before = {r["currency"]: r for r in ps["revenue"]}
    for r in s["revenue"]:
        was = before.get(r["currency"], {})
        items.append((pct(r["grr"]), f"GRR ({r['currency']})",
                      _delta(r["grr"], was.get("grr"), kind="pct", better="up")))
        items.append((pct(r["nrr"]), f"NRR ({r['currency']})",
                      _delta(r["nrr"], was.get("nrr"), kind="pct", better="up")))
    nps = s["nps"]["score"]
    items.append(("n/a" if nps is None else f"{nps:.1f}", f"NPS ({s['nps']['answers']:,} "
                  "answers)", _delta(nps, ps["nps"]["score"], kind="score", better="up")))
    items.append((pct(s["csat"]["share"]), f"CSAT ({s['csat']['answers']:,} answers)",
                  _delta(s["csat"]["share"], ps["csat"]["share"], kind="pct", better="up")))
    for cur, mrr in d["mrr_now"].items():
        items.append((money_text(mrr, cur), f"MRR now ({cur})",
                      _delta(mrr, p["mrr_now"].get(cur, 0), kind="money", better="up",
                             currency=cur)))
    items.append((f"{len(d['gaps']['rows']):,}", "open gaps",
                  _delta(len(d["gaps"]["rows"]), p["open_gaps"], kind="count",
                         better="down")))
    tiles = "".join(
        f'<div class="kpi" data-kpi="{html_text(label)}"><b>{html_text(value)}</b>'
        f"<span>{html_text(label)}</span>{delta}</div>" for value, label, delta in items)
    return f'<div class="kpis">{tiles}</div>{_overlap_note(s)}'


def _overlap_note(s: dict[str, Any]) -> str:
    """Why retention + churn can exceed 100%: won-back customers count in both."""
    retention, churn = s["retention_rate"], s["churn_rate"]
    if retention is None or churn is None or retention + churn <= 1 + 1e-9:
        return ""
    both = s["churned"] + s["retained"] - s["paying_at_start"]
    who = "customer" if both == 1 else "customers"
    return (f'<p class="why" data-note="retention-plus-churn">Retention ({pct(retention)}) '
            f"and churn ({pct(churn)}) add up to more than 100%: {both:,} {who} paying at "
            "the start of the period churned and were won back before its end, so they "
            "count as churned and as retained.</p>")


# ------------------------------------------------------------------ charts


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _month(label: str) -> str:
    """``2026-03`` -> ``Mar 2026``."""
    year, month = label.split("-")
    return f"{MONTHS[int(month) - 1]} {year}"


def _funnel(d: dict[str, Any]) -> str:
    bars = []
    for st in d["funnel"]["stages"]:
        conv = st["conversion_to_next"]
        text = f"{st['reached']:,}" + (f"  → {pct(conv, 0)} next" if conv is not None else "")
        if st["skipped"]:
            text += f"  ({st['skipped']:,} skipped)"
        bars.append(Bar(st["stage"], st["reached"], text, label_text=words(st["stage"])))
    return hbars("funnel", bars, width=480, label_width=110)


def _mrr(d: dict[str, Any]) -> str:
    """One small chart per currency, each with its own y axis."""
    months = sorted({p["month"] for p in d["mrr"]})
    by_cur: dict[str, dict[str, float]] = defaultdict(dict)
    for p in d["mrr"]:
        by_cur[p["currency"]][p["month"]] = major_units(p["mrr"], p["currency"])
    if not by_cur:
        return lines("mrr", [], {}, empty="no complete month in the period, or no MRR yet")
    charts = []
    width = max(330, 1000 // len(by_cur) - 14)  # the card's width shared, at about 1:1
    for cur, vals in sorted(by_cur.items()):
        chart = lines("mrr", months, {cur: [vals.get(m) for m in months]}, width=width,
                      height=220, y_min=0, y_title=cur, ticks=short_number, x_text=_month,
                      extra=f'data-currency="{html_text(cur)}" ')
        charts.append(f"<div>{chart}</div>")
    return f'<div class="multiples">{"".join(charts)}</div>'


def _nps(d: dict[str, Any]) -> str:
    months = [p["month"] for p in d["nps"]]
    scores = [p["score"] for p in d["nps"]]
    return lines("nps", months, {"NPS": scores}, width=1000, height=240, y_min=-100,
                 y_max=100, x_text=_month, y_title="NPS",
                 empty="no complete month in the period, or no NPS answers")


def _cohorts(d: dict[str, Any]) -> str:
    rows = [(r["cohort"], r["size"], r["shares"]) for r in d["cohorts"]["rows"]]
    return heatmap("cohorts", rows, empty="no complete cohort month yet")


def _stages(d: dict[str, Any]) -> str:
    return hbars("stages", [
        Bar(s["stage"], s["customers"], f"{s['customers']:,}  ({words(s['team'])})",
            label_text=words(s["stage"])) for s in d["stages"]], width=480, label_width=110)


def _health_bands(d: dict[str, Any]) -> str:
    return hbars("health", [Bar(b, n, f"{n:,}", BAND_COLORS[b], label_text=words(b))
                            for b, n in d["health"]["bands"].items()], width=1000)


def _gap_kinds(d: dict[str, Any]) -> str:
    counts = d["gaps"]["by_kind"]
    order = [k for k in KIND_ORDER if k in counts] + [k for k in counts if k not in KIND_ORDER]
    return hbars("gaps", [Bar(k, counts[k], f"{counts[k]:,}", label_text=gap_kind(k))
                          for k in order], width=1000, label_width=230)


# ------------------------------------------------------------------ page


def metric_charts(d: dict[str, Any]) -> dict[str, str]:
    """The report's metric charts as SVG (``funnel``, ``mrr``, ``nps``, ``cohorts``) for
    data shaped like :func:`lifecycle_es.report.metrics_data`'s (the web console's)."""
    return {"funnel": _funnel(d), "mrr": _mrr(d), "nps": _nps(d), "cohorts": _cohorts(d)}


def _where_the_rest_is(d: dict[str, Any]) -> str:
    """The footer: what this file holds of the full lists, and where they are."""
    caps, gaps, scores = d["caps"], len(d["gaps"]["rows"]), len(d["health"]["customers"])
    return (f"This file holds what it shows, nothing more: {min(gaps, caps['gap_rows']):,} of "
            f"{gaps:,} open gaps and {min(scores, caps['health_rows']):,} of {scores:,} "
            "health scores. The full lists: lifecycle-es gaps --csv and lifecycle-es health "
            "--csv, or the web console (lifecycle-es serve), whose cockpit lists and "
            "downloads every gap. Money is in major units.")


def render(d: dict[str, Any]) -> str:
    """The whole HTML document for the report data ``d``."""
    period = f"{d['period']['from'][:10]} → {d['period']['to'][:10]}"
    prev = d["previous"]
    prev_period = f"{prev['period']['from'][:10]} → {prev['period']['to'][:10]}"
    caps = d["caps"]
    band_note = ", ".join(f"{words(k)} ≥ {v:g}" for k, v in d["health"]["thresholds"].items())
    cohorts_total = d["cohorts"]["total"]
    shown_cohorts = len(d["cohorts"]["rows"])
    cohort_cap = (f"; the {shown_cohorts} most recent of {cohorts_total:,} cohorts "
                  f"(capped at {caps['cohort_rows']} rows; all: lifecycle-es cohorts)"
                  if cohorts_total > shown_cohorts else "")
    body = "".join([
        _section("Key figures", f"period {period} (end exclusive); 'now' means as of "
                 f"{when(d['as_of'])} UTC. ▲/▼: change against {prev['which']}, "
                 f"{prev_period} (as-of figures: against {when(prev['as_of'])} UTC); green "
                 "is better, red worse", _kpis(d), "kpis"),
        _section("Act on these first", "the most urgent gaps: renewals at risk by the "
                 "soonest contract end, handovers by the longest past their SLA, unhappy "
                 "customers by the most recent answer; every gap is listed under Gaps below",
                 act_first(d), "urgent"),
        '<div class="grid2">',
        _section("Stage distribution", "customers per stage, as of the report time",
                 _stages(d), "stages"),
        _section("Funnel", "customers who reached each stage in the period (cumulative: "
                 "a skipped stage counts as reached), and conversion to the next",
                 _funnel(d), "funnel"),
        "</div>",
        _section("MRR over time", "total MRR at the end of each complete month of the "
                 "period (and at its start), one chart per currency", _mrr(d), "mrr"),
        _section("NPS over time", "NPS of the answers given in each complete month of the "
                 "period (-100 to 100)", _nps(d), "nps"),
        _section("Cohort retention", "customers by month of first purchase (size in "
                 "brackets): % still paying at the end of each month after (column k)"
                 f"{cohort_cap}", _cohorts(d), "cohorts"),
        _section("Health", f"health scores of paying customers; bands: {band_note}, else "
                 "critical", _health_bands(d) + health_table(d), "health", "long"),
        _section("Gaps", "customers left hanging between teams, most urgent first",
                 _gap_kinds(d) + gaps_table(d), "gaps", "long"),
    ])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Lifecycle report {html_text(period)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>Customer lifecycle report</h1><p>period {html_text(period)} · as of "
        f"{html_text(when(d['as_of']))} UTC · stage model {html_text(d['stage_model'])} · "
        f"generated {html_text(d['generated_at'][:19].replace('T', ' '))} UTC</p>"
        '<p class="privacy">Contains personal data (customer names): share it only with '
        "people allowed to see them.</p></header>"
        f"<main>{body}</main>"
        f"<footer>{html_text(_where_the_rest_is(d))}</footer></body></html>"
    )
