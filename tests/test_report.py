"""The HTML report: one self-contained file whose charts and tables carry the right numbers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli
from gap_helpers import CFG, History, day

from lifecycle_es import LifecycleEngine
from lifecycle_es.report import build_report, report_data
from lifecycle_es.report.labels import duration, gap_kind, words

START, END, AS_OF = day(0), day(100), day(100)


class Elements(HTMLParser):
    """Every start tag with its attributes, plus the rows of each table: the row's
    attributes and the text of its cells (what a reader sees)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[Row]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("data-table") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append(Row(a, []))
        elif tag == "td" and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags
                if t == tag and all(a.get(k.rstrip("_").replace("_", "-")) == v
                                    for k, v in attrs.items())]

    def rows(self, table: str) -> list[Row]:
        """The body rows of ``<table data-table=TABLE>`` (not its header)."""
        return [r for r in self.tables.get(table, []) if r.cells]


@dataclass
class Row:
    attrs: dict[str, str | None]
    cells: list[str]


def story(engine: LifecycleEngine) -> None:
    h = History(engine)
    h.register("hc")
    h.cmd("owner_assigned", "hc", 0, owner="sue")
    h.buy("hc", 1, "2025-12-31", mrr=1000)
    h.cmd("stage_changed", "hc", 2, to_stage="onboarding")
    h.cmd("nps_answer", "hc", 10, score=9)
    h.cmd("expansion", "hc", 50, mrr_delta=500)
    h.register("gone")
    h.cmd("owner_assigned", "gone", 0, team="sales", owner="sam")
    h.buy("gone", 3, "2024-12-31", mrr=400)
    h.cmd("nps_answer", "gone", 20, score=3)
    h.cmd("churned", "gone", 40, team="success", reason="budget")
    h.register("lead")
    h.cmd("touchpoint", "lead", 5, team="sales", channel="call", campaign_id="ghost")


def parse(html: str) -> Elements:
    doc = Elements()
    doc.feed(html)
    return doc


def kpi(html: str, label: str) -> str:
    """The value shown on the key-figure tile ``label``."""
    found = re.search(rf'data-kpi="{re.escape(label)}"><b>([^<]*)</b>', html)
    assert found is not None, label
    return found.group(1)


def section_text(html: str, key: str) -> str:
    """The text of section ``key`` as a reader sees it (spaces collapsed)."""
    part = html.split(f'data-section="{key}"')[1].split("</section>")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", part).split())


def chart(doc: Elements, name: str, mark: str) -> dict[str, float]:
    """data-label -> data-value of the marks of one chart (marks follow their <svg>)."""
    out: dict[str, float] = {}
    inside = False
    for tag, attrs in doc.tags:
        if tag == "svg":
            inside = attrs.get("data-chart") == name
        elif inside and tag == mark and attrs.get("data-label") is not None:
            out[str(attrs["data-label"])] = float(str(attrs["data-value"]))
    return out


def test_report_structure_and_numbers(engine: LifecycleEngine) -> None:
    story(engine)
    html = build_report(engine, START, END, AS_OF, config=CFG)
    doc = parse(html)
    data = report_data(engine, START, END, AS_OF, config=CFG)  # what the page is drawn from

    # self-contained (no external resource of any kind), and no data it does not show:
    # no script, no data island
    assert "<script" not in html
    assert not re.search(r"<link|<img|\bsrc=|@import|url\(", html)
    assert set(re.findall(r"https?://[^\s\"'<]+", html)) == {"http://www.w3.org/2000/svg"}
    assert [a["data-section"] for a in doc.find("section")] == [
        "kpis", "urgent", "stages", "funnel", "mrr", "nps", "cohorts", "health", "gaps"]
    assert {a["data-chart"] for a in doc.find("svg")} == {
        "stages", "funnel", "mrr", "nps", "cohorts", "health", "gaps"}

    stages = {"awareness": 1, "consideration": 0, "purchase": 0, "onboarding": 1,
              "retention": 0, "advocacy": 0, "churned": 1}
    assert chart(doc, "stages", "rect") == stages

    # funnel of [day 0, day 100): all three registered in awareness on day 0; furthest stage
    # hc onboarding, gone purchase (churned is no funnel stage), lead awareness. Cumulative:
    # hc and gone reached consideration without entering it (skipped 2).
    funnel = chart(doc, "funnel", "rect")
    assert funnel == {"awareness": 3, "consideration": 2, "purchase": 2, "onboarding": 1,
                      "retention": 0, "advocacy": 0}
    shown = section_text(html, "funnel")  # each bar's count, conversion and skipped
    for text in ("3 → 67% next", "2 → 100% next (2 skipped)", "2 → 50% next",
                 "1 → 0% next"):
        assert text in shown, text

    def stage(name: str, team: str, reached: int, entered: int, conversion: float | None,
              median: float | None, samples: int) -> dict[str, Any]:
        return {"stage": name, "team": team, "reached": reached, "entered": entered,
                "skipped": reached - entered, "conversion_to_next": conversion,
                "median_days_to_next": median, "to_next_samples": samples}

    assert data["funnel"] == {
        "start": "2024-01-01T00:00:00+00:00", "end": "2024-04-10T00:00:00+00:00",
        "customers": 3,
        "stages": [
            stage("awareness", "marketing", 3, 3, 2 / 3, None, 0),  # nobody entered co
            stage("consideration", "sales", 2, 0, 1.0, None, 0),
            # purchase -> onboarding: hc day 1 -> day 2 (gone never onboarded)
            stage("purchase", "sales", 2, 2, 0.5, 1.0, 1),
            stage("onboarding", "success", 1, 1, 0.0, None, 0),
            stage("retention", "success", 0, 0, None, None, 0),  # 0/0: undefined
            stage("advocacy", "success", 0, 0, None, None, 0),  # the last stage
        ],
    }

    # MRR at the end of Jan, Feb, Mar 2024 (gone churned on Feb 10), in major units
    assert chart(doc, "mrr", "circle") == {"2024-01": 14.0, "2024-02": 15.0, "2024-03": 15.0}
    assert kpi(html, "MRR now (EUR)") == "EUR 15.00" and "MRR now (USD)" not in html
    # NPS: one promoter in January (+100), one detractor in January too -> 0
    assert chart(doc, "nps", "circle") == {"2024-01": 0.0}

    cells = [(a["data-row"], a["data-col"], float(str(a["data-value"])))
             for a in doc.find("rect", class_="cell")]
    assert cells == [("2024-01", "0", 1.0), ("2024-01", "1", 0.5), ("2024-01", "2", 0.5)]

    assert chart(doc, "health", "rect") == {"healthy": 0, "at risk": 1, "critical": 0}
    assert [r.attrs["data-customer"] for r in doc.rows("health")] == ["hc"]
    assert doc.rows("health")[0].cells[:3] == ["HC hc", "45", "at risk"]

    # gaps as of day 100 (2024-04-10) with the default thresholds, by urgency (kinds in
    # urgency order; within stalled, the oldest first):
    # (customer, kind, since (day), days open, team, owner, stage, detail, ref)
    expected = [
        # NPS 3 on day 20, no check-in: detractor ignored from day 20 + 7
        ("gone", "detractor_ignored", 27, 73, "success", "sam", "churned",
         "NPS 3 on 2024-01-21, no check-in since", None),
        # no owner ever: since registration; awareness is marketing's
        ("lead", "unowned", 0, 100, "marketing", None, "awareness",
         "no owner in stage awareness", None),
        # the touchpoint of day 5 cites a campaign the registry never knew; its actor owns it
        ("lead", "unknown_offer", 5, 95, "sales", "sam", "awareness",
         "touchpoint on 2024-01-06 cites campaign 'ghost', unknown to the registry", "ghost"),
        # onboarding since day 2, limit 45 days
        ("hc", "stalled", 47, 53, "success", "sue", "onboarding",
         "in onboarding since 2024-01-03 (limit 45 days)", None),
        # awareness since day 0, limit 90 days
        ("lead", "stalled", 90, 10, "marketing", None, "awareness",
         "in awareness since 2024-01-01 (limit 90 days)", None),
        # NPS 9 on day 10, never asked to advocate: from day 10 + 30
        ("hc", "promoter_not_asked", 40, 60, "success", "sue", "onboarding",
         "NPS 9 on 2024-01-11, never asked to advocate", None),
    ]
    keys = ("customer", "kind", "since", "days_open", "team", "owner", "stage", "detail",
            "ref")
    # as `lifecycle-es gaps --json`, plus the name and (renewals only) the MRR at stake
    ids = [row.pop("id") for row in data["gaps"]["rows"]]
    assert [i.split(":")[:2] for i in ids] == [[k, c] for c, k, *_ in expected]
    assert len(set(ids)) == len(ids)
    # the table shows them: customer (name and id), gap, open for (since, in its title),
    # team, owner, stage, what happened
    shown = doc.rows("gaps")
    assert [r.attrs["data-gap"] for r in shown] == ids
    assert [r.cells[1:] for r in shown] == [
        [f"{c.upper()} {c}", gap_kind(k), duration(d), words(team), owner or "-", words(st),
         html_detail] for c, k, _, d, team, owner, st, html_detail, _ in expected]
    since = [a["title"] for a in doc.find("td", class_="nowrap")]
    assert since == [f"since {day(s).isoformat()[:16].replace('T', ' ')} UTC"
                     for _, _, s, *_ in expected]
    assert data["gaps"]["rows"] == [
        {**dict(zip(keys, (c, k, day(since).isoformat(), d, *rest), strict=True)),
         "name": c.upper(), "contract_end": None, "mrr": None, "currency": None,
         "assignee": None, "snoozed_until": None, "dismissed": None}
        for c, k, since, d, *rest in expected]
    assert chart(doc, "gaps", "rect") == {
        "unowned": 1, "handover_stale": 0, "renewal_at_risk": 0, "detractor_ignored": 1,
        "stalled": 2, "promoter_not_asked": 1, "unknown_offer": 1, "lapsing": 0}
    rows = html.split('data-table="gaps"')[1].split("</table>")[0].count("<tr")
    assert rows == len(expected) + 1  # plus the header row
    table = [a["data-kind"] for a in doc.find("tr") if a.get("data-kind")]
    assert table == [k for _, k, *_ in expected]
    assert kpi(html, "open gaps") == str(len(expected))


def test_empty_store_still_renders(engine: LifecycleEngine) -> None:
    html = build_report(engine, START, END, AS_OF, config=CFG)
    doc = parse(html)
    assert kpi(html, "customers (as of)") == "0" and kpi(html, "open gaps") == "0"
    assert doc.rows("gaps") == [] and "no open gap" in html
    assert {a["data-chart"] for a in doc.find("svg", class_="chart empty")} == {
        "mrr", "nps", "cohorts"}


@pytest.mark.slow
def test_cli_gaps_health_report(durable_store_url: str, tmp_path: Path) -> None:
    engine = LifecycleEngine(durable_store_url)
    story(engine)
    engine.close()
    as_of = "--as-of=2024-04-10"
    gaps = json.loads(cli(durable_store_url, "gaps", as_of, "--json").stdout)
    assert {(g["customer"], g["kind"]) for g in gaps} >= {("lead", "unowned"),
                                                           ("lead", "unknown_offer")}
    assert set(gaps[0]) == {"id", "customer", "kind", "since", "days_open", "team",
                            "owner", "stage", "detail", "ref", "assignee", "snoozed_until",
                            "dismissed"}
    only = json.loads(cli(durable_store_url, "gaps", as_of, "--kind", "unknown-offer",
                          "--team", "sales", "--json").stdout)
    assert [(g["customer"], g["ref"], g["owner"]) for g in only] == [("lead", "ghost", "sam")]
    [hc] = json.loads(cli(durable_store_url, "health", "--customer", "hc", as_of,
                          "--json").stdout)
    # NPS 9: 25; never checked in: 0; 2 gaps (stalled, promoter not asked): 0;
    # MRR 1000 -> 1500 over 90 days: 15; 53 days stalled: 0; no advocacy: 5
    assert (hc["score"], hc["band"]) == (45, "at risk")
    assert hc["factors"]["last_nps"] == {"value": 9, "points": 100, "weight": 25,
                                         "contribution": 25}
    table = cli(durable_store_url, "health", "--customer", "hc", as_of).stdout
    assert "45.0 (at risk)" in table and "days_since_check_in" in table
    out = tmp_path / "r.html"
    done = cli(durable_store_url, "report", "--out", str(out), "--from", "2024-01-01",
               "--to", "2024-04-10", as_of)
    assert str(out) in done.stdout
    assert kpi(out.read_text(), "MRR now (EUR)") == "EUR 15.00"
    bad = cli(durable_store_url, "gaps", "--kind", "lost", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "kind='lost'" in bad.stderr
    bad = cli(durable_store_url, "health", "--config", str(tmp_path / "nope.toml"),
              check=False)
    assert bad.returncode == 2 and "nope.toml" in bad.stderr and "Traceback" not in bad.stderr
