"""The report rendered by a real browser: headless Chromium (Debian's ``chromium`` package,
installed by ``.ci/run``) opens the file offline and a probe script, added to a copy of the
page for the test only, measures what a reader would see: no script error, no console
message, each chart inside its card and at a readable scale, wide charts across their card,
a chart in each chart section, the key figures, the urgent-gaps list and the names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from report_story import HOSTILE

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate, parse_all
from lifecycle_es.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                                "chromium; .ci/run installs it)"),
]

UNTIL = date(2025, 7, 1)
AS_OF = datetime(2025, 7, 1, tzinfo=UTC)

#: measures the rendered page and writes the result into <pre id="probe"> for --dump-dom
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message)));
window.addEventListener("load", () => {
  const out = {errors: window.__errors, charts: [], kpis: [], urgent: 0, imgs: 0,
               scripts: document.scripts.length, text: document.body.innerText};
  for (const svg of document.querySelectorAll("svg.chart")) {
    const card = svg.closest("section"), r = svg.getBoundingClientRect();
    const c = card.getBoundingClientRect(), box = svg.viewBox.baseVal;
    out.charts.push({chart: svg.dataset.chart, section: card.dataset.section,
      width: r.width, card: c.width - 40, scale: box && box.width ? r.width / box.width : 1,
      inside: r.left >= c.left - 1 && r.right <= c.right + 1 && r.top >= c.top - 1
              && r.bottom <= c.bottom + 1, empty: svg.classList.contains("empty")});
  }
  for (const k of document.querySelectorAll(".kpi")) out.kpis.push(k.dataset.kpi);
  out.urgent = document.querySelectorAll("[data-urgent] li").length;
  out.imgs = document.querySelectorAll("img").length;
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=0", *args],
        capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of 150 demo customers (three currencies) plus one with markup as name."""
    engine = LifecycleEngine("memory://")
    try:
        engine.record_many(parse_all(generate(150, 5, engine.stage_model, UNTIL)))
        engine.register(customer="evil", name=HOSTILE, segment="smb", source="web",
                        at="2025-01-02T10:00:00Z", actor="ann", team="marketing")
        html = build_report(engine, datetime(2025, 1, 1, tzinfo=UTC), AS_OF, AS_OF)
    finally:
        engine.close()
    out = tmp_path_factory.mktemp("report") / "report.html"
    out.write_text(html, encoding="utf-8")
    return out


#: window widths the page is measured at: a laptop, and a narrow window (one column)
DESKTOP, NARROW = 1200, 760


@pytest.fixture(scope="module", params=[DESKTOP, NARROW])
def probe(request: pytest.FixtureRequest, report_file: Path,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    probed = report_file.with_name("probed.html")
    probed.write_text(report_file.read_text(encoding="utf-8").replace(
        "</head>", PROBE + "</head>", 1), encoding="utf-8")
    done = chromium("--dump-dom", "--virtual-time-budget=5000",
                    f"--window-size={request.param},2000", probed.as_uri(),
                    profile=tmp_path_factory.mktemp("profile"))
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, done.stderr[-2000:]
    import html

    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    result["window"] = request.param
    return result


def test_the_page_opens_without_any_script_error_or_console_message(
        report_file: Path, probe: dict[str, Any], tmp_path: Path) -> None:
    assert probe["errors"] == []
    done = chromium("--dump-dom", report_file.as_uri(), profile=tmp_path / "profile")
    assert done.returncode == 0
    assert "CONSOLE" not in done.stderr and "Uncaught" not in done.stderr
    assert "Customer lifecycle report" in done.stdout


def test_every_chart_sits_inside_its_card_at_a_readable_scale(probe: dict[str, Any]) -> None:
    charts = [c for c in probe["charts"] if not c["empty"]]
    assert {c["section"] for c in charts} == {"stages", "funnel", "mrr", "nps", "cohorts",
                                              "health", "gaps"}
    for c in charts:
        assert c["inside"], c
        assert c["scale"] <= 1.26, c  # never blown up: 12 px text stays under 16 px
        if probe["window"] == DESKTOP and c["chart"] != "cohorts":
            assert c["scale"] >= 0.75, c  # nor shrunk below 9 px on a laptop


def test_wide_charts_use_their_card(probe: dict[str, Any]) -> None:
    [nps] = [c for c in probe["charts"] if c["chart"] == "nps"]
    assert nps["card"] > 500
    assert nps["width"] >= 0.95 * nps["card"]
    mrr = [c for c in probe["charts"] if c["chart"] == "mrr"]
    assert len(mrr) == 3  # one per currency of the demo: EUR, GBP, USD
    assert sum(c["width"] for c in mrr) >= 0.9 * mrr[0]["card"]


def test_key_figures_urgent_gaps_and_names_are_shown(probe: dict[str, Any]) -> None:
    for kpi in ("customers (as of)", "customer retention", "churn rate", "open gaps",
                "MRR now (EUR)"):
        assert kpi in probe["kpis"]
    assert probe["urgent"] >= 3
    text = probe["text"]
    assert "Act on these first" in text and "vs " in text  # the previous period's figures
    assert HOSTILE in text  # the markup of a name is shown as text...
    assert probe["imgs"] == 0 and probe["scripts"] == 1  # ...never run: only the probe


def test_a_screenshot_shows_the_page(report_file: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1200,2400", "--hide-scrollbars",
                    report_file.as_uri(), profile=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000  # a drawn page, not blank


def test_it_prints_to_pdf(report_file: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    done = chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", report_file.as_uri(),
                    profile=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) >= 2
