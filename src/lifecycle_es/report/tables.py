"""The report's lists and tables: "act on these first", the lowest health scores with a
small bar per factor, and every gap by urgency. All text is HTML-escaped here."""

from __future__ import annotations

from datetime import date
from typing import Any

from lifecycle_es.display import html_text, money_text
from lifecycle_es.privacy import ERASED
from lifecycle_es.report.labels import (
    STILL_BUYING,
    duration,
    factor,
    factor_value,
    gap_action,
    gap_kind,
    words,
)

BAND_COLORS = {"healthy": "#16a34a", "at risk": "#d97706", "critical": "#dc2626"}


def _points_color(points: float) -> str:
    return "#16a34a" if points >= 70 else "#d97706" if points >= 40 else "#dc2626"


def who(row: dict[str, Any]) -> str:
    """The customer's name (placeholder once erased) and id."""
    name, cid = row.get("name"), html_text(row["customer"])
    if not name:
        return f'<span class="id">{cid}</span>'
    css = "erased" if name == ERASED else "name"
    return f'<span class="{css}">{html_text(name)}</span> <span class="id">{cid}</span>'


def _team(row: dict[str, Any]) -> str:
    return html_text(words(row.get("team")))


def _days_until(end: str | None, as_of: str) -> str:
    if end is None:
        return ""
    left = (date.fromisoformat(end[:10]) - date.fromisoformat(as_of[:10])).days
    if left > 0:
        return f"in {duration(left)}"
    return "today" if left == 0 else f"{duration(-left)} ago"


def _stake(row: dict[str, Any], as_of: str) -> str:
    """For a renewal at risk: when the contract ends and the MRR at stake."""
    if row.get("contract_end") is None:
        return ""
    end = row["contract_end"][:10]
    left = _days_until(end, as_of)
    mrr = money_text(row["mrr"], row["currency"]) if row.get("mrr") is not None else ""
    return (f"contract ends {html_text(end)} ({html_text(left)})"
            + (f", {html_text(mrr)} MRR at stake" if mrr else ""))


def _urgent_line(row: dict[str, Any], as_of: str) -> str:
    owner = row.get("owner")
    tail = f"owner {html_text(owner)}" if owner else "no owner"
    tail += f" ({_team(row)})" if row.get("team") else ""
    if row["kind"] == "renewal_at_risk":
        what = _stake(row, as_of)
    elif row["kind"] == "handover_stale":
        what = f"waiting {html_text(duration(row['days_open']))} past the SLA"
    else:
        what = (f"{html_text(row['detail'])}; follow-up overdue by "
                f"{html_text(duration(row['days_open']))}")
    return f"<li>{who(row)}: {what}; {tail}</li>"


def act_first(d: dict[str, Any]) -> str:
    """One short list per urgent kind (most urgent first), with how many more there are."""
    blocks = []
    for group in d["gaps"]["first"]:
        kind = group["kind"]
        items = "".join(_urgent_line(r, d["as_of"]) for r in group["rows"])
        more = (f'<p class="note">and {group["more"]:,} more under Gaps</p>'
                if group["more"] else "")
        listing = (f"<ol>{items}</ol>" if items
                   else '<p class="note">none: nothing to do here</p>')
        blocks.append(f'<div data-urgent="{html_text(kind)}"><h3>{html_text(gap_kind(kind))}'
                      f'</h3><p class="action">{html_text(gap_action(kind))}</p>'
                      f"{listing}{more}</div>")
    return f'<div class="first">{"".join(blocks)}</div>'


def _factor_cell(name: str, f: dict[str, Any], total_weight: float) -> str:
    """A small bar (the factor's points out of 100) and its contribution out of its most."""
    most = 100 * f["weight"] / total_weight
    title = (f"{factor(name)}: {factor_value(name, f['value'])} gives {f['points']:g} of 100 "
             f"points; weight {f['weight']:g}: {f['contribution']:g} of the score's "
             f"{most:g} points for it")
    return (f'<td data-factor="{html_text(name)}" data-points="{html_text(f["points"])}" '
            f'title="{html_text(title)}"><span class="factor"><i style="width:'
            f'{round(max(0.0, min(100.0, f["points"])))}%;background:'
            f'{_points_color(f["points"])}"></i></span><span class="factor-text">'
            f"{html_text(factor_value(name, f['value']))} · {f['contribution']:g}/{most:g}"
            "</span></td>")


def health_table(d: dict[str, Any]) -> str:
    h = d["health"]
    cap = d["caps"]["health_rows"]
    rows = h["customers"][:cap]
    if not rows:
        return '<p class="note">no health scores (no paying customer)</p>'
    names = list(dict.fromkeys(n for c in rows for n in c["factors"]))  # a factor may be off
    head = "".join(f"<th>{html_text(factor(n))}</th>" for n in names)
    body = []
    for c in rows:
        band = html_text(c["band"])
        total_weight = sum(f["weight"] for f in c["factors"].values()) or 1
        cells = "".join(_factor_cell(n, c["factors"][n], total_weight) if n in c["factors"]
                        else f'<td data-factor="{html_text(n)}" class="factor-text" title="'
                             'off for this customer">off</td>' for n in names)
        body.append(
            f'<tr data-customer="{html_text(c["customer"])}"><td class="who">{who(c)}</td>'
            f'<td class="num">{c["score"]:.0f}</td><td><span class="band" style="background:'
            f'{BAND_COLORS.get(c["band"], "#4b5563")}">{band}</span></td>'
            f"<td>{html_text(words(c['stage']))}</td><td>{html_text(c['owner'] or '-')}</td>"
            f"{cells}</tr>")
    note = (f'<p class="note">the {len(rows)} lowest of {len(h["customers"]):,} scores '
            f"(capped at {cap}; all: lifecycle-es health --csv). Each factor: a bar of its points "
            "out of 100, its value, and the points it adds to the score out of its most"
            + (f". {factor('still_buying')}: {STILL_BUYING}; off for a customer on a contract"
               if "still_buying" in names else "") + "</p>")
    return (f"<h3>Lowest scores</h3>{note}<div class=\"scroll\"><table data-table=\"health\">"
            "<thead><tr><th>customer</th><th class=\"num\">score</th><th>band</th>"
            f"<th>stage</th><th>owner</th>{head}</tr></thead><tbody>{''.join(body)}"
            "</tbody></table></div>")


def gaps_table(d: dict[str, Any]) -> str:
    g = d["gaps"]
    cap = d["caps"]["gap_rows"]
    rows = g["rows"][:cap]
    if not rows:
        return '<p class="note">no open gap</p>'
    body = []
    for n, r in enumerate(rows, start=1):
        stake = _stake(r, d["as_of"])
        detail = html_text(r["detail"])
        if stake:  # the contract end is in the stake: the rest of the detail after it
            head, _, rest = r["detail"].partition("; ")
            detail = f"{stake}; {html_text(rest)}" if head.startswith("contract ends") \
                else f"{stake}; {detail}"
        body.append(
            f'<tr data-kind="{html_text(r["kind"])}" data-customer="{html_text(r["customer"])}"'
            f' data-gap="{html_text(r["id"])}"><td class="num">{n}</td>'
            f'<td class="who">{who(r)}</td>'
            f"<td>{html_text(gap_kind(r['kind']))}</td>"
            f'<td class="nowrap" title="since {html_text(r["since"][:16].replace("T", " "))}'
            f' UTC">{html_text(duration(r["days_open"]))}</td>'
            f"<td>{_team(r)}</td><td>{html_text(r['owner'] or '-')}</td>"
            f"<td>{html_text(words(r['stage']))}</td>"
            f"<td>{detail}</td></tr>")
    more = len(g["rows"]) - len(rows)
    note = (f'<p class="note">the {len(rows)} most urgent of {len(g["rows"]):,} gaps (capped '
            f"at {cap} rows; all: lifecycle-es gaps --csv, or the web console's cockpit)</p>"
            if more > 0 else "")
    return (f'{note}<div class="scroll"><table data-table="gaps"><thead><tr>'
            '<th class="num">#</th><th>customer</th><th>gap</th><th>open for</th>'
            "<th>team</th><th>owner</th><th>stage</th><th>what happened</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")
