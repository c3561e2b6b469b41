"""The report as a head of customer success reads it: names next to ids (a placeholder after
erasure, markup in a name shown as text), human labels, gaps by urgency with an "act on these
first" list, key figures against the previous period, the note on retention + churn, one MRR
chart per currency, series within the period, and every cap stated."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import escape
from html.parser import HTMLParser

import pytest
from gap_helpers import CFG
from report_story import END, HOSTILE, SECRET, START, reader_story
from test_report import chart, kpi, parse

import lifecycle_es.report as report
from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection import queries
from lifecycle_es.report import build_report
from lifecycle_es.report.labels import duration, factor_value
from lifecycle_es.report.periods import previous_period


class Text(HTMLParser):
    """The text a reader sees (not attributes, not the style sheet)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip = tag in ("script", "style", "title")

    def handle_endtag(self, tag: str) -> None:
        self.skip = False

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def seen(html: str) -> str:
    t = Text()
    t.feed(html)
    return " ".join(t.parts)


@pytest.fixture
def html(engine: LifecycleEngine) -> str:
    reader_story(engine)
    return build_report(engine, START, END, END, config=CFG)


def section(html: str, key: str) -> str:
    return html.split(f'data-section="{key}"')[1].split("</section>")[0]


def test_names_are_shown_next_to_ids_and_erased_ones_as_a_placeholder(html: str) -> None:
    doc = parse(html)
    text = seen(html)
    assert "REN-SOON" in text and "ren-soon" in text
    names = {r.attrs["data-customer"]: r.cells[1] for r in doc.rows("gaps")}
    assert names["ren-late"] == "REN-LATE ren-late" and names["erased"] == "[erased] erased"
    assert "[erased]" in text and SECRET not in html  # nowhere in the file
    health = {r.attrs["data-customer"]: r.cells[0] for r in doc.rows("health")}
    assert health["usd"] == "USD usd"
    assert "Contains personal data" in text


def test_markup_in_a_name_is_shown_as_text(html: str) -> None:
    doc = parse(html)
    assert "<script>alert" not in html and "<img" not in html and "onerror=\"" not in html
    assert HOSTILE in seen(html)  # the reader sees exactly the stored name
    names = {r.attrs["data-customer"]: r.cells[1] for r in doc.rows("gaps")}
    assert names["evil-2"] == " ".join(f"{HOSTILE} evil-2".split())
    assert [t for t, _ in doc.tags].count("script") == 0  # no script at all


def test_gaps_are_in_urgency_order_with_the_urgent_ones_first(html: str) -> None:
    doc = parse(html)
    order = [(r.attrs["data-customer"], r.attrs["data-kind"]) for r in doc.rows("gaps")]
    # renewals by the soonest contract end, then detractors by the newest answer
    assert order[:4] == [("ren-soon", "renewal_at_risk"), ("ren-late", "renewal_at_risk"),
                         ("det-new", "detractor_ignored"), ("det-old", "detractor_ignored")]
    assert {k for _, k in order[4:]} == {"unowned", "stalled"}
    first = section(html, "urgent")
    assert [a["data-urgent"] for a in doc.find("div") if a.get("data-urgent")] == [
        "renewal_at_risk", "handover_stale", "detractor_ignored"]
    renewals = first.split('data-urgent="renewal_at_risk"')[1].split("</ol>")[0]
    assert renewals.index("ren-soon") < renewals.index("ren-late")
    assert "contract ends 2024-06-05 (in 4 days), EUR 10.00 MRR at stake" in renewals
    detractors = first.split('data-urgent="detractor_ignored"')[1]
    assert detractors.index("det-new") < detractors.index("det-old")
    assert "none: nothing to do here" in first.split('data-urgent="handover_stale"')[1]


def test_human_labels_and_rounded_durations(html: str) -> None:
    text = seen(html)
    for label in ("Renewal at risk", "Unhappy customer not contacted", "No owner",
                  "Stuck in a stage", "Last NPS", "Last check-in", "Awareness", "Marketing"):
        assert label in text, label
    for code in ("renewal_at_risk", "detractor_ignored", "days_since_check_in",
                 "promoter_not_asked"):
        assert code not in text, code
    ages = re.findall(r'<td class="nowrap" title="since [^"]*">([^<]*)</td>',
                      section(html, "gaps"))
    assert ages and all(re.fullmatch(r"\d+ (h|days?|weeks|months)|\d+\.\d years", a)
                        for a in ages), ages  # never "152.0" days


def test_health_scores_are_explained_by_a_bar_per_factor(engine: LifecycleEngine,
                                                         html: str) -> None:
    doc = parse(html)
    data = report.report_data(engine, START, END, END, config=CFG)  # the page's numbers
    worst = data["health"]["customers"][0]
    cells = [a for a in doc.find("td") if a.get("data-factor")]
    assert len(doc.rows("health")) == len(data["health"]["customers"]) == 4
    assert [r.attrs["data-customer"] for r in doc.rows("health")] == [
        c["customer"] for c in data["health"]["customers"]]
    assert len(cells) == len(data["health"]["customers"]) * len(worst["factors"])
    first = cells[:len(worst["factors"])]
    assert {a["data-factor"]: float(str(a["data-points"])) for a in first} == {
        name: f["points"] for name, f in worst["factors"].items()}
    bars = re.findall(r'<span class="factor"><i style="width:(\d+)%', section(html, "health"))
    assert [int(w) for w in bars[:len(first)]] == [
        round(float(str(a["data-points"]))) for a in first]  # each bar: its points of 100


def test_key_figures_against_the_previous_period(html: str) -> None:
    # [2024-03-01, 2024-06-01) is no year-to-date: the 92 days just before
    assert ("against the period of the same length just before, 2023-11-30 → 2024-03-01"
            in seen(html))
    kpis = section(html, "kpis")
    gaps_tile = kpis.split('data-kpi="open gaps"')[1].split('class="kpi"')[0]
    n = int(kpi(html, "open gaps"))
    assert n == len(parse(html).rows("gaps"))
    assert f"▲ {n - 12}" in gaps_tile and "vs 12" in gaps_tile and "bad" in gaps_tile
    paying = kpis.split('data-kpi="paying at period end"')[1].split('class="kpi"')[0]
    assert "= same as before (4)" in paying
    churn = kpis.split('data-kpi="churn rate"')[1].split('class="kpi"')[0]
    assert "no previous figure" in churn  # nobody paid at 2023-11-30


def test_retention_plus_churn_over_100_percent_is_explained(html: str) -> None:
    assert (kpi(html, "customer retention"), kpi(html, "churn rate")) == ("100.0%", "25.0%")
    note = section(html, "kpis").split('data-note="retention-plus-churn">')[1].split("</p>")[0]
    assert "1 customer paying at the start of the period churned and were won back" in note


def test_no_note_when_they_do_not_exceed_100_percent(engine: LifecycleEngine) -> None:
    reader_story(engine)
    html = build_report(engine, START, datetime(2024, 3, 15, tzinfo=UTC), END, config=CFG)
    assert "retention-plus-churn" not in html


def test_one_mrr_chart_per_currency_and_series_within_the_period(html: str) -> None:
    doc = parse(html)
    mrr = [a for a in doc.find("svg") if a.get("data-chart") == "mrr"]
    assert [a["data-currency"] for a in mrr] == ["EUR", "USD"]
    # the period's complete months, MRR also at its start (the end of February)
    assert sorted(chart(doc, "mrr", "circle")) == ["2024-02", "2024-03", "2024-04",
                                                   "2024-05"]
    axis = section(html, "nps")  # March has no answer: a month without a point
    assert [m for m in ("Feb", "Mar", "Apr", "May", "Jun") if f">{m} 2024<" in axis] == [
        "Mar", "Apr", "May"]
    assert list(chart(doc, "nps", "circle")) == ["2024-04", "2024-05"]
    for a in doc.find("svg", class_="chart"):  # charts scale to their card
        assert "width" not in a and a["viewbox"] is not None


def test_every_cap_is_stated(engine: LifecycleEngine, monkeypatch: pytest.MonkeyPatch
                             ) -> None:
    reader_story(engine)
    monkeypatch.setattr(report, "GAP_ROWS", 3)
    monkeypatch.setattr(report, "HEALTH_ROWS", 2)
    html = build_report(engine, START, END, END, config=CFG)
    n = int(kpi(html, "open gaps"))
    assert n > 3 and f"the 3 most urgent of {n} gaps (capped at 3 rows" in seen(html)
    assert section(html, "gaps").count('<tr data-kind=') == 3
    assert "the 2 lowest of 4 scores (capped at 2" in seen(html)
    monkeypatch.setattr(report, "COHORT_ROWS", 1)
    html = build_report(engine, START, END, END, config=CFG)
    total = len(engine.metrics.cohorts(as_of=END).rows)
    shown = {a["data-row"] for a in parse(html).find("rect", class_="cell")}
    assert total > 1 and len(shown) == 1
    assert f"the 1 most recent of {total} cohorts (capped at 1 rows" in seen(html)


def test_previous_period_rules() -> None:
    jan1, jun1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    which, shift = previous_period(jan1, datetime(2026, 12, 2, tzinfo=UTC))
    assert which == "the same dates a year earlier"  # year to date: same season
    assert shift(datetime(2026, 12, 2, tzinfo=UTC)) == datetime(2025, 12, 2, tzinfo=UTC)
    assert previous_period(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
                           )[1](datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
                               2023, 2, 28, tzinfo=UTC)
    which, shift = previous_period(datetime(2026, 3, 1, tzinfo=UTC), jun1)
    assert which == "the period of the same length just before"
    assert shift(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2025, 11, 29, tzinfo=UTC)  # 92 d


@pytest.mark.parametrize(("days", "text"), [
    (0.2, "5 h"), (1, "1 day"), (12.4, "12 days"), (45, "6 weeks"), (200, "7 months"),
    (1002.62, "2.7 years")])
def test_durations_read_as_people_say_them(days: float, text: str) -> None:
    assert duration(days) == text


def test_factor_values_have_units() -> None:
    assert factor_value("days_since_check_in", None) == "never"
    assert factor_value("mrr_trend", -26.8) == "-26.8%"
    assert factor_value("stalled_days", 0) == "0 days"
    assert factor_value("last_nps", 9) == "9"


def test_it_holds_only_what_it_shows_and_says_where_the_rest_is(
        engine: LifecycleEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """No hidden data island: every customer name in the file is in the text a reader sees
    (a table cell, a list item), never only in an attribute or a script; the capped lists
    say how many more there are and where."""
    reader_story(engine)
    monkeypatch.setattr(report, "GAP_ROWS", 3)
    monkeypatch.setattr(report, "HEALTH_ROWS", 2)
    html = build_report(engine, START, END, END, config=CFG)
    assert "<script" not in html and "report-data" not in html
    text = seen(html)
    names = {n for n in queries.customer_names(engine.reader.projections).values() if n}
    in_file = {n for n in names if escape(n, quote=False) in html
               or escape(n) in html}
    assert in_file and in_file < names  # some names are shown, not all of them
    for name in in_file:
        assert name in text, name
    n = int(kpi(html, "open gaps"))
    footer = html.split("<footer>")[1]
    assert f"3 of {n} open gaps and 2 of 4 health scores" in footer
    assert "lifecycle-es gaps --csv" in footer and "lifecycle-es serve" in footer

