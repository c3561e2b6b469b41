"""The console in a real browser: Playwright driving Debian's ``chromium`` (Playwright's own
browser download is not used) against a real ``lifecycle-es serve`` process. Sign in, walk
every page at 390 px and 1280 px (no console error, no CSP violation, nothing wider than the
screen), filter the cockpit, accept a handover and see it leave the pending list; axe-core
finds no serious or critical accessibility violation on any page.

axe-core comes from its npm package: ``$LIFECYCLE_ES_AXE_JS`` names its ``axe.min.js``, else
``node_modules/axe-core/axe.min.js`` of the checkout (``npm install --no-save axe-core``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import small_demo
from web_helpers import PASSWORD, add_customer, add_users, free_port, start_serve, wait_up

from lifecycle_es import LifecycleEngine

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parent.parent
AXE = Path(os.environ.get("LIFECYCLE_ES_AXE_JS")
           or ROOT / "node_modules" / "axe-core" / "axe.min.js")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install "
                                                "chromium; .ci/run installs it)"),
]
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

PAGES = ["/", "/customers/acme", "/handovers", "/campaigns", "/metrics", "/audit",
         "/operations"]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a console on a small demo, with the users and a handover to accept."""
    store = small_demo(tmp_path_factory, "browser")
    engine = LifecycleEngine(store)
    try:
        add_users(engine)
        add_customer(engine, "acme", "Acme <b>&</b> Co")
    finally:
        engine.close()
    port = free_port()
    proc = start_serve(store, port)
    try:
        wait_up(proc, f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _signed_in(browser: Any, base: str, user: str, width: int,
               **options: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(base_url=base, viewport={"width": width, "height": 900},
                                  **options)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    page.goto("/")
    assert "/signin" in page.url
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    return context, page, problems


@pytest.mark.parametrize("width", [390, 1280])
def test_every_page_renders_cleanly(console: str, browser: Any, width: int) -> None:
    context, page, problems = _signed_in(browser, console, "adam", width)
    try:
        for path in PAGES:
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("load")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{path} is {overflow} px wider than {width} px"
            assert page.locator("h1").count() == 1, path
            assert page.locator("footer.fresh").count() == 1, path  # how fresh, every page
        assert problems == []  # no script error, no CSP violation, no failed asset
    finally:
        context.close()


def test_filter_the_cockpit_and_accept_a_handover(console: str, browser: Any) -> None:
    context, page, problems = _signed_in(browser, console, "ann", 1280)
    try:
        page.select_option("select[name=team]", "success")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/?*team=success*")
        teams = page.locator("table.items td[data-label=Team]").all_inner_texts()
        assert teams and set(teams) == {"success"}
        page.goto("/handovers")
        assert page.locator("section.pending a[href='/customers/acme']").count() == 1
        page.goto("/customers/acme")
        assert "Acme <b>&</b> Co" in page.locator("h1").inner_text()  # text, not markup
        page.locator("article.handover button", has_text="Accept").click()
        page.wait_for_url("**/customers/acme?done=accept")
        assert "Recorded (accept)" in page.inner_text("main")
        page.goto("/handovers")
        assert page.locator("section.pending a[href='/customers/acme']").count() == 0
        deadline = time.monotonic() + 15  # the decided list is a view renewed in a second
        while page.locator("section.decided a[href='/customers/acme']").count() != 1:
            assert time.monotonic() < deadline, "the accepted handover never showed as decided"
            page.wait_for_timeout(200)
            page.goto("/handovers")
        assert problems == []
    finally:
        context.close()


def test_announce_a_campaign_and_correct_a_refused_field(console: str, browser: Any) -> None:
    context, page, problems = _signed_in(browser, console, "lea", 390)  # a lead, on a phone
    try:
        page.goto("/campaigns")
        form = page.locator("form.campaign")
        form.locator("input[name=campaign]").fill("browser-spring")
        form.locator("input[name=name]").fill("Spring <b>sale</b>")
        form.locator("textarea[name=offer]").fill("two months free")
        form.locator("input[name=discount_percent]").fill("150")
        form.locator("input[name=starts]").fill("2026-03-01")
        form.locator("input[name=ends]").fill("2026-02-01")
        form.locator("select[name=owning_team]").select_option("marketing")
        form.locator("button[type=submit]").click()
        page.wait_for_load_state("load")
        errors = page.locator("#error-discount_percent").inner_text()
        assert "discount_percent=150" in errors and "100" in errors
        assert page.locator("input[name=name]").input_value() == "Spring <b>sale</b>"
        page.locator("form.campaign input[name=discount_percent]").fill("15")
        page.locator("form.campaign button[type=submit]").click()
        page.wait_for_load_state("load")
        assert "campaign ends before it starts" in page.locator("#error-ends").inner_text()
        page.locator("form.campaign input[name=ends]").fill("2026-05-31")
        page.locator("form.campaign button[type=submit]").click()
        page.wait_for_url("**/campaigns/browser-spring?done=announce")
        assert page.locator("h1").inner_text().startswith("Spring <b>sale</b>")  # as text
        assert "Recorded (announce)" in page.inner_text("main")
        page.goto("/campaigns")
        row = page.locator("table.items tr", has_text="Spring <b>sale</b>")
        assert row.locator("td[data-label='Owning team']").inner_text() == "marketing"
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1
        assert [p for p in problems if "422" not in p] == []  # a refused form answers 422
    finally:
        context.close()


def test_htmx_updates_the_cockpit_and_an_action_in_place(console: str, browser: Any) -> None:
    """With htmx the filter form and the check-in form update the page without loading it
    again (a value set in the page survives); the URL still says the filters."""
    context, page, problems = _signed_in(browser, console, "lea", 1280)
    try:
        page.evaluate("window.kept = 'same page'")
        before = page.locator("#gap-count").inner_text()
        page.select_option("select[name=kind]", "stalled")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/?*kind=stalled*")
        page.wait_for_function("document.querySelector('#gap-count').innerText !== "
                               f"{before!r}")
        kinds = page.locator("table.items td[data-label='What is late'] .kind")
        assert set(kinds.all_inner_texts()) == {"stalled"}
        assert page.evaluate("window.kept") == "same page"  # swapped in place
        page.goto("/customers/acme")
        page.evaluate("window.kept = 'customer page'")
        form = page.locator("form[action$='/check-in']")
        form.locator("input[name=notes]").fill("x" * 10_001)
        form.locator("button").click()
        page.wait_for_selector("p.error")
        assert "notes=" in page.locator("p.error").first.inner_text()
        page.locator("form[action$='/check-in'] input[name=notes]").fill("called <b>them</b>")
        page.locator("form[action$='/check-in'] button").click()
        page.wait_for_selector("p.done")
        assert "Recorded (check-in)" in page.inner_text("main")
        newest = page.locator("table.timeline tbody tr").first.inner_text()
        assert newest.split("\t")[1:4] == ["check in", "lea", "sales"]
        assert page.evaluate("window.kept") == "customer page"
        assert [p for p in problems if "422" not in p] == []
    finally:
        context.close()


@pytest.mark.skipif(not AXE.is_file(), reason=f"axe-core not found at {AXE} "
                    "(npm install --no-save axe-core, or set LIFECYCLE_ES_AXE_JS)")
def test_no_serious_accessibility_violation(console: str, browser: Any) -> None:
    # axe is injected for the test only: the console's CSP would rightly refuse it
    context, page, _ = _signed_in(browser, console, "adam", 1280, bypass_csp=True)
    found: dict[str, list[str]] = {}
    try:
        page.goto("/campaigns")  # a campaign's page, with its forms to change and end it
        campaign = page.locator("table.items a").first.get_attribute("href")
        for path in ["/signin", *PAGES, campaign]:
            page.goto(path)
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(
                "async () => (await axe.run(document)).violations"
                ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
                ".map(v => v.id + ': ' + v.nodes.length + ' node(s)')")
            if violations:
                found[path] = violations
    finally:
        context.close()
    assert found == {}
