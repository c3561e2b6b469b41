"""The report as a head of customer success reads it: names next to ids (a placeholder after
erasure, markup in a name shown as text), human labels, gaps by urgency with an "act on these
first" list, key figures against the previous period, the note on retention + churn, one MRR
chart per currency, series within the period, and every cap stated."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from gap_helpers import CFG
from report_story import END, HOSTILE, SECRET, START, reader_story
from test_report import parse

import lifecycle_es.report as report
from lifecycle_es import LifecycleEngine
from lifecycle_es.report import build_report
from lifecycle_es.report.labels import duration, factor_value
from lifecycle_es.report.periods import previous_period


class Text(HTMLParser):
    """The text a reader sees (not the data island, not attributes)."""

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
    _, data = parse(html)
    text = seen(html)
    assert "REN-SOON" in text and "ren-soon" in text
    names = {r["customer"]: r["name"] for r in data["gaps"]["rows"]}
    assert names["ren-late"] == "REN-LATE" and names["erased"] == "[erased]"
    assert "[erased]" in text and SECRET not in html  # nowhere: not even in the data island
    assert {c["customer"]: c["name"] for c in data["health"]["customers"]}["usd"] == "USD"
    assert "Contains personal data" in text


def test_markup_in_a_name_is_shown_as_text(html: str) -> None:
    doc, data = parse(html)
    assert "<script>alert" not in html and "<img" not in html and "onerror=\"" not in html
    assert HOSTILE in seen(html)  # the reader sees exactly the stored name
    assert {r["customer"]: r["name"] for r in data["gaps"]["rows"]}["evil-2"] == HOSTILE
    assert [t for t, _ in doc.tags].count("script") == 1  # only the data island


def test_gaps_are_in_urgency_order_with_the_urgent_ones_first(html: str) -> None:
    doc, data = parse(html)
    order = [(r["customer"], r["kind"]) for r in data["gaps"]["rows"]]
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


def test_health_scores_are_explained_by_a_bar_per_factor(html: str) -> None:
    doc, data = parse(html)
    worst = data["health"]["customers"][0]
    cells = [a for a in doc.find("td") if a.get("data-factor")]
    assert len(cells) == len(data["health"]["customers"]) * len(worst["factors"])
    first = cells[:len(worst["factors"])]
    assert {a["data-factor"]: float(str(a["data-points"])) for a in first} == {
        name: f["points"] for name, f in worst["factors"].items()}
    bars = re.findall(r'<span class="factor"><i style="width:(\d+)%', section(html, "health"))
    assert [int(w) for w in bars[:len(first)]] == [
        round(float(str(a["data-points"]))) for a in first]  # each bar: its points of 100


def test_key_figures_against_the_previous_period(html: str) -> None:
    _, data = parse(html)
    prev = data["previous"]
    # [2024-03-01, 2024-06-01) is no year-to-date: the 92 days just before
    assert prev["period"] == {"from": "2023-11-30T00:00:00+00:00",
                              "to": "2024-03-01T00:00:00+00:00"}
    assert prev["summary"]["paying_at_end"] == 4 and prev["open_gaps"] == 12
    kpis = section(html, "kpis")
    gaps_tile = kpis.split('data-kpi="open gaps"')[1].split('class="kpi"')[0]
    n = len(data["gaps"]["rows"])
    assert f"▲ {n - 12}" in gaps_tile and "vs 12" in gaps_tile and "bad" in gaps_tile
    paying = kpis.split('data-kpi="paying at period end"')[1].split('class="kpi"')[0]
    assert "= same as before (4)" in paying
    churn = kpis.split('data-kpi="churn rate"')[1].split('class="kpi"')[0]
    assert "no previous figure" in churn  # nobody paid at 2023-11-30


def test_retention_plus_churn_over_100_percent_is_explained(html: str) -> None:
    _, data = parse(html)
    s = data["summary"]
    assert (s["retention_rate"], s["churn_rate"]) == (1.0, 0.25)
    note = section(html, "kpis").split('data-note="retention-plus-churn">')[1].split("</p>")[0]
    assert "1 customer paying at the start of the period churned and were won back" in note


def test_no_note_when_they_do_not_exceed_100_percent(engine: LifecycleEngine) -> None:
    reader_story(engine)
    html = build_report(engine, START, datetime(2024, 3, 15, tzinfo=UTC), END, config=CFG)
    assert "retention-plus-churn" not in html


def test_one_mrr_chart_per_currency_and_series_within_the_period(html: str) -> None:
    doc, data = parse(html)
    mrr = [a for a in doc.find("svg") if a.get("data-chart") == "mrr"]
    assert [a["data-currency"] for a in mrr] == ["EUR", "USD"]
    # the period's complete months, MRR also at its start (the end of February)
    assert sorted({p["month"] for p in data["mrr"]}) == ["2024-02", "2024-03", "2024-04",
                                                          "2024-05"]
    assert [p["month"] for p in data["nps"]] == ["2024-03", "2024-04", "2024-05"]
    for a in doc.find("svg", class_="chart"):  # charts scale to their card
        assert "width" not in a and a["viewbox"] is not None


def test_every_cap_is_stated(engine: LifecycleEngine, monkeypatch: pytest.MonkeyPatch
                             ) -> None:
    reader_story(engine)
    monkeypatch.setattr(report, "GAP_ROWS", 3)
    monkeypatch.setattr(report, "HEALTH_ROWS", 2)
    html = build_report(engine, START, END, END, config=CFG)
    _, data = parse(html)
    n = len(data["gaps"]["rows"])
    assert f"the 3 most urgent of {n} gaps (capped at 3 rows" in seen(html)
    assert section(html, "gaps").count('<tr data-kind=') == 3
    assert "the 2 lowest of 4 scores (capped at 2" in seen(html)
    monkeypatch.setattr(report, "COHORT_ROWS", 1)
    html = build_report(engine, START, END, END, config=CFG)
    cohorts = parse(html)[1]["cohorts"]
    assert cohorts["total"] > 1 and len(cohorts["rows"]) == 1
    assert f"the 1 most recent of {cohorts['total']} cohorts (capped at 1 rows" in seen(html)


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
