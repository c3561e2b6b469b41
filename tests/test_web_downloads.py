"""Downloads of the console: the cockpit's gaps with its filters (every page of them), the
handovers, and each table of the metrics page, as CSV and JSON; the same rows as the page
and the CLI, formulas kept as text, bad parameters refused with the CLI's message."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from cli_helpers import in_process
from web_helpers import client, demo_with_users, sign_in

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import load_config
from lifecycle_es.web import cockpit_page_size
from lifecycle_es.web.pages.downloads import METRIC_TABLES
from lifecycle_es.web.pages.metrics import DOWNLOADS


def _csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_with_users(tmp_path_factory, "downloads", {
        "evil": "=HYPERLINK(\"http://x.example\",\"click\")", "minus": "-2+3 <b>Ltd</b>"})


@pytest.fixture
def engine(demo_store: str) -> Iterator[LifecycleEngine]:
    e = LifecycleEngine(demo_store)
    yield e
    e.close()


def test_gaps_download_is_every_gap_of_the_filters(
        engine: LifecycleEngine, demo_store: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    with client(engine) as c:
        sign_in(c, "ann")
        page = c.get("/?team=sales").text
        total = int(re.findall(r'<small id="gap-count">(\d+) open gap', page)[0])
        assert 'href="/gaps.csv?team=sales"' in page
        r = c.get("/gaps.csv?team=sales&page=3")  # the page is no filter of the download
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.headers["content-disposition"] == 'attachment; filename="gaps.csv"'
        rows = _csv(r.content)
        assert len(rows) == total > 0
        assert {row["team"] for row in rows} == {"sales"}
        as_json = orjson.loads(c.get("/gaps.json?team=sales").content)
        assert [g["id"] for g in as_json] == [row["id"] for row in rows]
        first_page = re.findall(r'<a href="/customers/([^"]+)">', page)
        assert [row["customer"] for row in rows[:len(first_page)]] == first_page
        everything = _csv(c.get("/gaps.csv").content)
        pages = int(re.findall(r"page 1 of (\d+)", c.get("/").text)[0])
        assert pages > 1 and len(everything) > cockpit_page_size()  # every page of them
        bad = c.get("/gaps.csv?kind=nonsense")
        assert bad.status_code == 400 and "kind='nonsense': unknown gap kind" in bad.text
        assert c.get("/gaps.xlsx").status_code == 404
    code, out, err = in_process(capsys, monkeypatch, demo_store, "gaps", "--csv")
    assert code == 0, err
    cli_rows = _csv(out.encode())
    assert {r["id"] for r in cli_rows} == {r["id"] for r in everything}  # the CLI's gaps
    names = {r["customer"]: r["name"] for r in everything}
    assert names["evil"] == "'=HYPERLINK(\"http://x.example\",\"click\")"  # text, no formula
    assert names["minus"] == "'-2+3 <b>Ltd</b>"


def test_handovers_download_with_its_filters(engine: LifecycleEngine) -> None:
    with client(engine) as c:
        sign_in(c, "ann")
        assert 'href="/handovers.csv?status=pending"' in c.get("/handovers").text
        rows = _csv(c.get("/handovers.csv").content)
        pending = _csv(c.get("/handovers.csv?status=pending").content)
        assert {r["status"] for r in pending} == {"pending"}
        assert len(rows) > len(pending) > 0
        evil = next(r for r in pending if r["customer"] == "evil")
        sent = datetime.fromisoformat(evil["sent_at"])
        sla = load_config().gaps.handover_sla_days
        past = (datetime.now(UTC) - sent).total_seconds() / 86_400 - sla
        assert abs(float(evil["days_past_sla"]) - past) < 0.05
        to_success = orjson.loads(c.get("/handovers.json?status=pending&team=success").content)
        assert {h["to_team"] for h in to_success} == {"success"}
        assert "document" not in to_success[0]  # the documents stay on the customer pages
        bad = c.get("/handovers.csv?status=lost&team=%00x")
        assert bad.status_code == 400
        assert "status='lost': unknown status" in bad.text and "team='\\x00x'" in bad.text


def test_each_metrics_table_downloads(engine: LifecycleEngine) -> None:
    assert [name for name, _ in DOWNLOADS] == list(METRIC_TABLES)  # each one linked
    period = "from=2025-01-01&to=2025-07-01"
    with client(engine) as c:
        sign_in(c, "ann")
        page = c.get(f"/metrics?{period}").text
        for name in METRIC_TABLES:
            assert f'href="/metrics/{name}.csv?from=2025-01-01&amp;to=2025-07-01"' in page
            r = c.get(f"/metrics/{name}.csv?{period}")
            assert r.status_code == 200, name
            rows = _csv(r.content)
            assert rows == [{k: "" if v is None else str(v) for k, v in row.items()}
                            for row in orjson.loads(c.get(f"/metrics/{name}.json?{period}")
                                                    .content)], name
        start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
        funnel = orjson.loads(c.get(f"/metrics/funnel.json?{period}").content)
        assert funnel == engine.metrics.funnel(start, end).to_dict()["stages"]
        cohorts = _csv(c.get(f"/metrics/cohorts.csv?{period}").content)
        expected = engine.metrics.cohorts().rows  # every cohort (the chart shows the last 24)
        assert [(r["cohort"], int(r["size"]), float(r["m1"])) for r in cohorts] == [
            (r.cohort, r.size, float(r.shares[1])) for r in expected]
        mrr = orjson.loads(c.get(f"/metrics/mrr.json?{period}").content)
        assert [p["month"] for p in mrr if p["currency"] == "EUR"] == [
            "2024-12", "2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
        summary = {r["metric"]: r for r in orjson.loads(
            c.get(f"/metrics/summary.json?{period}").content)}
        s = engine.metrics.summary(start, end)
        assert summary["paying_at_end"]["period"] == s.paying_at_end
        assert summary["nps.score"]["period"] == pytest.approx(float(s.nps.score or 0))
        stages = orjson.loads(c.get(f"/metrics/time-in-stage.json?{period}").content)
        assert stages == engine.metrics.time_in_stage(start, end, end).to_dict()["stages"]
        assert c.get("/metrics/secrets.csv").status_code == 404
        bad = c.get("/metrics/funnel.csv?from=someday")
        assert bad.status_code == 400 and "from='someday': not a date" in bad.text
        assert c.get("/metrics/funnel.csv?from=2025-07-01&to=2025-01-01").status_code == 400
