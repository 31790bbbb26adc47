"""The report in a real browser: Debian's headless Chromium, driven by Playwright, from file://.

Checks what a person would notice: every page loads without a console error (a broken
link, a script error or a Content-Security-Policy violation all log one), the trend charts
are drawn, the scorecard shows the rolled-back agent's level and its incident, the filters
work, and markup in an agent's output stays text. Screenshots go to test-artifacts/report/.

Skips when /usr/bin/chromium is missing (``apt-get install -y chromium``); when it is there,
the test runs and needs the ``playwright`` package (never ``playwright install``: the test
drives Debian's browser, not a downloaded one).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evals.metrics import TELEMETRY_METRICS
from evals.report import Report, build_report
from tests.evals.test_report_history import (
    HOSTILE,
    ROOT,
    History,
    hostile_project,
    write_history,
)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "report"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium "
        "(apt-get install -y chromium); the report's browser test needs it",
    ),
]


@dataclass
class Site:
    history: History
    report: Report
    hostile: Report


@dataclass
class Loaded:
    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    tmp = tmp_path_factory.mktemp("browser")
    history = write_history(tmp / "results", nights=6, ci=True)
    report = build_report(history.results, tmp / "site", policies=ROOT / "policies")
    policies, results = hostile_project(tmp / "hostile")
    hostile = build_report(results, tmp / "hostile-site", policies=policies)
    return Site(history, report, hostile)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "chromium is installed but the playwright package is not: "
            "pip install playwright==1.65.2 (and never `playwright install`)"
        )
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def open_page(browser: Any, path: Path) -> Loaded:
    page = browser.new_page()
    loaded = Loaded(page)
    page.on(
        "console",
        lambda message: loaded.errors.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: loaded.errors.append(str(error)))

    def dialog(opened: Any) -> None:
        loaded.dialogs.append(opened.message)
        opened.dismiss()

    page.on("dialog", dialog)
    page.goto(path.as_uri(), wait_until="load")
    return loaded


def screenshot(loaded: Loaded, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    loaded.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def test_the_scorecards_load_and_draw_their_charts(site: Site, browser: Any) -> None:
    index = open_page(browser, site.report.index)
    assert index.page.locator(".card").count() == 3
    assert (
        "No: v2 at constrained"
        in index.page.locator('[data-agent="returns-concierge"]').inner_text()
    )
    screenshot(index, "index", full_page=True)
    assert index.errors == []

    # The rolled-back agent: its level now, where it came from, and the open incident.
    account = open_page(browser, site.report.out / "agents" / "account-support.html")
    page = account.page
    facts = page.locator("#autonomy + .ladder + dl.facts")
    assert facts.locator("dt:text-is('holds') + dd").inner_text() == "approval"
    assert "constrained → approval" in facts.inner_text()
    assert page.locator(".ladder span.held").inner_text() == "approval"
    incident = page.locator(".incident[data-incident='rollback']").first
    assert incident.is_visible()
    assert "open" in incident.locator(".badge").inner_text()
    assert "rollback" in incident.inner_text()

    # Charts: one per gated metric of the current and the next level, really drawn (those
    # measured from production telemetry have no points here: the history has none).
    charts = page.locator("svg.trend")
    drawn = [
        charts.nth(i)
        for i in range(charts.count())
        if charts.nth(i).get_attribute("data-metric") not in TELEMETRY_METRICS
    ]
    assert len(drawn) >= 4
    for chart in drawn:
        box = chart.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 100
        assert chart.locator("circle.pt").count() == len(site.history.runs["account-support"])
        length = chart.locator("path.line").evaluate("line => line.getTotalLength()")
        assert length > 50  # the browser laid out a real polyline through the runs
    assert page.locator("svg.trend path.ev.rollback").count() >= 1
    assert page.locator("svg.trend line.ver").count() >= 1
    screenshot(account, "account-support", full_page=True)
    assert account.errors == []


def test_the_drill_down_filters_and_compares(site: Site, browser: Any) -> None:
    run_id = site.history.runs["returns-concierge"][-1]
    loaded = open_page(browser, site.report.out / "runs" / "returns-concierge" / f"{run_id}.html")
    page = loaded.page
    cases = page.locator("article.case")
    total = cases.count()
    assert total > 10
    page.select_option("#filter-metric", "hallucination")
    visible = page.locator("article.case:visible")
    hallucinating = visible.count()
    assert 0 < hallucinating <= total
    for i in range(hallucinating):
        assert "hallucination" in (visible.nth(i).get_attribute("data-metrics") or "")
    assert page.locator("#filter-count").inner_text() == f"{hallucinating} shown"
    tag = page.locator("#filter-tag option").nth(1).get_attribute("value")
    page.select_option("#filter-tag", tag)
    assert page.locator("article.case:visible").count() <= hallucinating
    page.select_option("#filter-metric", "")
    page.select_option("#filter-tag", "")
    assert page.locator("article.case:visible").count() == total
    first = cases.first
    first.locator("details.contexts summary").click()
    assert first.locator("details.contexts li").first.is_visible()
    assert first.locator("table").first.is_visible()  # the judge's claims
    screenshot(loaded, "run-returns-concierge")
    assert loaded.errors == []

    ci = open_page(
        browser, site.report.out / "runs" / "returns-concierge" / f"{site.history.ci_run}.html"
    )
    assert ci.page.locator("#compare").is_visible()
    assert ci.page.locator("table.worse tbody tr").count() > 5
    screenshot(ci, "ci-candidate-vs-baseline")
    assert ci.errors == []


def test_an_output_with_a_script_tag_renders_as_text(site: Site, browser: Any) -> None:
    run_page = next(p for p in site.hostile.pages if p.parent.name == "tiny-agent")
    loaded = open_page(browser, run_page)
    page = loaded.page
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert HOSTILE in page.locator("article.case pre.text").nth(1).inner_text()
    assert page.locator("article.case img").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0
    screenshot(loaded, "hostile-output")
    assert loaded.errors == []  # and no blocked script either: nothing tried to run
    assert loaded.dialogs == []
    # Every page of the hostile project: no payload in any field opens a dialog.
    for path in site.hostile.pages:
        other = open_page(browser, path)
        assert (other.dialogs, other.page.evaluate("typeof window.__pwned")) == ([], "undefined"), (
            path
        )
        other.page.close()
