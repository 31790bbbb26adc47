"""The static report as files: what each page says, how pages link, escaping, masking, Markdown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from evals.errors import UserError
from evals.report import Report, build_report, run_summary_markdown, run_summary_table
from evals.report._assets import CSP, CSS, SCRIPT
from evals.report._html import Html, el, esc
from evals.store import ResultsStore
from tests.evals.test_report_history import (
    HOSTILE,
    ROOT,
    History,
    baseline_column,
    hostile_project,
    write_history,
)

POLICIES = ROOT / "policies"


@dataclass
class Built:
    history: History
    report: Report

    def page(self, relative: str) -> str:
        return (self.report.out / relative).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("report")
    with baseline_column():
        history = write_history(tmp / "results", nights=4, ci=True)
        report = build_report(history.results, tmp / "site", policies=POLICIES)
    return Built(history, report)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"href", "src"} and value:
                self.links.append(value)
        if tag == "script":
            self.scripts.append(dict(attrs))


def test_the_site_has_an_index_a_scorecard_per_agent_and_run_pages(built: Built) -> None:
    out = built.report.out
    assert built.report.index == out / "index.html"
    assert sorted(p.name for p in (out / "agents").iterdir()) == [
        "account-support.html",
        "billing-assistant.html",
        "returns-concierge.html",
    ]
    account_runs = {p.stem for p in (out / "runs" / "account-support").iterdir()}
    assert account_runs == set(built.history.runs["account-support"])
    assert (out / "runs" / "returns-concierge" / f"{built.history.ci_run}.html").is_file()


def test_every_link_is_relative_and_resolves(built: Built) -> None:
    for page in built.report.pages:
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            if link == "data:,":
                continue
            parts = urlsplit(link)
            assert not parts.scheme, f"{page.name} links outside: {link}"
            assert not parts.netloc, f"{page.name} links outside: {link}"
            target = (page.parent / parts.path).resolve() if parts.path else page
            assert target.is_file(), f"{page.name}: {link} is broken"
        # Only the report's own inline script, which the policy admits by hash.
        assert all(not s.get("src") for s in parser.scripts)


def test_pages_carry_a_strict_content_security_policy(built: Built) -> None:
    assert "default-src 'none'" in CSP
    assert "unsafe-inline" not in CSP
    for page in built.report.pages:
        text = page.read_text(encoding="utf-8")
        assert f'content="{esc(CSP)}"' in text
        assert text.count("<style>") == 1
        assert f"<style>{CSS}</style>" in text  # byte for byte, or the hash would not match
        assert text.count("<script>") in (0, 1)
        if "<script>" in text:
            assert f"<script>{SCRIPT}</script>" in text


def test_the_scorecard_of_the_rolled_back_agent(built: Built) -> None:
    text = built.page("agents/account-support.html")
    # The level it holds now, where it came from, and the open incident.
    assert re.search(r"<dt>holds</dt><dd><strong>approval</strong>", text)
    assert "rollback on " in text
    assert "constrained → approval, version v2 → v1" in text
    assert "Open incidents (1)" in text
    assert 'class="badge fail">open</span>' in text
    assert "a run passes every gate at constrained again" in text
    # The contract: outcome before → target with window and owner, adoption, workflow.
    assert "Account tickets handled per agent-hour" in text
    assert "7 → 18 tickets/h" in text
    assert "support-analytics@contoso.example" in text
    assert "0% → 50%" in text
    assert "error budget" in text
    # The next level's gate and the paths.
    assert "next: constrained" in text
    assert "webhook $ACCOUNT_ALERTS_WEBHOOK" in text
    assert "<dt>demotes to</dt><dd>approval</dd>" in text
    # A trend chart per gated metric (current and next level), with the rollback on its axis.
    charts = re.findall(r'<svg [^>]*class="trend" data-metric="([a-z0-9_]+)"', text)
    assert set(charts) >= {"policy_violation_rate", "faithfulness", "hallucination_rate"}
    assert 'class="ev rollback"' in text
    assert 'class="ver"' in text  # v1 → v2 → v1


def test_the_escalated_agent_is_not_trusted_with_more(built: Built) -> None:
    text = built.page("agents/returns-concierge.html")
    assert "No: v2 at constrained does not hold its current level." in text
    assert "escalation ×2 since" in text
    assert "hallucination_rate ≤ 0.15: fail" in text
    index = built.page("index.html")
    assert index.count('class="card"') == 3


def test_the_healthy_agent_says_what_the_next_level_needs(built: Built) -> None:
    text = built.page("agents/billing-assistant.html")
    assert "Open incidents (0)" in text
    assert "not ready for expanded" in text
    # 0 of 48 violations only bounds the rate below 7.4%: inconclusive against ≤ 0.02.
    assert "policy_violation_rate ≤ 0.02: inconclusive" in text


def test_run_page_drills_into_failing_cases_with_evidence(built: Built) -> None:
    concierge = built.history.runs["returns-concierge"][-1]
    text = built.page(f"runs/returns-concierge/{concierge}.html")
    assert "Failing cases (" in text
    assert 'id="filter-metric"' in text
    assert 'id="filter-tag"' in text
    assert re.search(r'data-metrics="\[&quot;faithfulness&quot;, &quot;hallucination&quot;', text)
    assert "claims (word-overlap (test) judge)" in text
    assert "closest or supporting passage" in text
    # Inputs come from the dataset file (the store keeps none).
    failing = {
        r["case_id"]
        for r in ResultsStore(built.history.results).samples("returns-concierge").to_pylist()
        if r["run_id"] == concierge and r["passed"] is False
    }
    dataset = ROOT / "datasets" / "returns-concierge" / "cases.jsonl"
    inputs = [
        row["input"]
        for row in map(json.loads, dataset.read_text(encoding="utf-8").splitlines())
        if row["id"] in failing
    ]
    assert inputs
    assert any(esc(i) in text for i in inputs)


def test_personal_data_is_masked_everywhere(built: Built) -> None:
    rolled_back = next(
        r
        for r in ResultsStore(built.history.results).samples("account-support").to_pylist()
        if r["metric"] == "policy_violation" and r["passed"] is False
    )
    text = built.page(f"runs/account-support/{rolled_back['run_id']}.html")
    assert 'class="masked"' in text
    violation = re.search(r'"start": (\d+), "end": (\d+)', rolled_back["evidence"])
    assert violation is not None
    raw = rolled_back["output"][int(violation[1]) : int(violation[2])]
    assert "@" in raw or any(ch.isdigit() for ch in raw)
    for page in built.report.pages:
        assert esc(raw) not in page.read_text(encoding="utf-8"), f"{raw!r} shown on {page.name}"


def test_ci_run_shows_candidate_vs_baseline(built: Built) -> None:
    text = built.page(f"runs/returns-concierge/{built.history.ci_run}.html")
    assert "Candidate vs baseline" in text
    assert built.history.baseline_run in text
    worse = re.search(r"Cases that got worse \((\d+)\)", text)
    assert worse is not None
    assert int(worse[1]) >= 10  # v2's ungrounded promises, case by case
    assert "newly failing" in text
    # CI candidates stay off the scorecard and the trends.
    scorecard = built.page("agents/returns-concierge.html")
    assert "ci (vs baseline)" in scorecard
    assert f"{built.history.ci_run}" not in scorecard.split('id="runs"')[0]


def test_without_the_baseline_column_there_is_no_comparison(tmp_path: Path) -> None:
    with baseline_column(present=False):
        history = write_history(tmp_path / "results", nights=1, ci=True)
        report = build_report(history.results, tmp_path / "site", policies=POLICIES)
    text = (report.out / "runs" / "returns-concierge" / f"{history.ci_run}.html").read_text()
    assert "Candidate vs baseline" not in text


class _Tags(HTMLParser):
    """Every element and attribute the browser would build from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self._in_script = tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)
            self._in_script = False


def test_untrusted_text_is_escaped_everywhere(tmp_path: Path) -> None:
    policies, results = hostile_project(tmp_path)
    report = build_report(results, tmp_path / "site", policies=policies)
    pages = {p.name: p.read_text(encoding="utf-8") for p in report.pages}
    for name, text in pages.items():
        parsed = _Tags()
        parsed.feed(text)
        # Markup in an output, input, context, tag, case id or contract built nothing.
        assert not {"img", "b", "iframe", "object"} & parsed.tags, name
        assert not [a for a in parsed.attributes if a.startswith("on")], name
        assert parsed.scripts in ([], [SCRIPT]), name
    run_page = next(t for n, t in pages.items() if n.startswith("2026"))
    assert esc(HOSTILE) in run_page  # the output, as text
    assert "&lt;script&gt;window.__pwned = 5&lt;/script&gt;" in run_page  # the input
    assert "&lt;/pre&gt;&lt;script&gt;window.__pwned = 6" in run_page  # a context
    assert 'id="case-c2&quot;&gt;&lt;svg onload=&quot;window.__pwned = 4&quot;&gt;"' in run_page
    assert "Cost &lt;/td&gt;&lt;script&gt;" in pages["tiny-agent.html"]
    assert "&lt;b onmouseover=" in pages["index.html"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
        ('" onclick="x', "&quot; onclick=&quot;x"),
        ("a & b", "a &amp; b"),
        (3, "3"),
    ],
)
def test_esc(value: object, expected: str) -> None:
    assert esc(value) == expected


def test_el_escapes_children_and_attributes_but_not_fragments() -> None:
    inner = el("b", "<i>")
    html = el("p", "1 < 2", inner, title='say "hi"', data_x="<", hidden=True, skip=None)
    assert html == '<p title="say &quot;hi&quot;" data-x="&lt;" hidden>1 &lt; 2<b>&lt;i&gt;</b></p>'
    assert isinstance(html, Html)
    with pytest.raises(ValueError, match="not an attribute name"):
        el("p", **{"on click": "x"})


def test_rebuilding_replaces_the_site_and_never_another_folder(
    built: Built, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    build_report(built.history.results, site, policies=POLICIES, agents=["billing-assistant"])
    stale = site / "agents" / "stale.html"
    stale.write_text("old")
    again = build_report(
        built.history.results, site, policies=POLICIES, agents=["billing-assistant"]
    )
    assert not stale.exists()
    assert again.agents == ["billing-assistant"]
    assert not list(tmp_path.glob(".site*"))  # no staging folders left behind
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not an impactgate report"):
        build_report(built.history.results, other, policies=POLICIES)
    assert (other / "notes.txt").read_text() == "keep me"


def test_a_changed_dataset_is_called_out(tmp_path: Path) -> None:
    policies, results = hostile_project(tmp_path, nights=1)
    cases = tmp_path / "datasets" / "tiny-agent" / "cases.jsonl"
    cases.write_text(cases.read_text() + "\n")
    report = build_report(results, tmp_path / "site", policies=policies)
    run_page = next(p for p in report.pages if p.parent.name == "tiny-agent")
    assert "changed since this run" in run_page.read_text()


def test_markdown_summary_of_a_run(built: Built) -> None:
    run_id = built.history.runs["returns-concierge"][-1]
    text = run_summary_markdown(built.history.results, run_id, policies=POLICIES)
    assert text.startswith(f"## returns-concierge · run `{run_id}`")
    assert "**fail** — v2 gated at constrained · nightly" in text
    assert "**Can it be trusted with more?** No: v2 at constrained does not hold" in text
    assert "| hallucination\\_rate | 0.420 | [0.294, 0.558] | ≤ 0.15 | fail |" in text.replace(
        "\\[", "["
    ).replace("\\]", "]")
    assert "**Open incidents (1):**" in text
    assert "**Failing cases (" in text
    rows = run_summary_table(built.history.results, run_id, policies=POLICIES)
    assert rows[0]["metric"] == "faithfulness"
    assert {r["verdict"] for r in rows} >= {"fail", "pass", "not gated"}


def test_markdown_summary_escapes_untrusted_text(tmp_path: Path) -> None:
    policies, results = hostile_project(tmp_path, nights=1)
    run_id = ResultsStore(results).runs().column("run_id")[0].as_py()
    text = run_summary_markdown(
        results, run_id, policies=policies, report_url="file:///r/a (b).html"
    )
    assert "<script>" not in text
    assert "<svg" not in text
    assert "&lt;script&gt;window.\\_\\_pwned" in text
    assert "[Open the report](file:///r/a%20%28b%29.html)" in text


def test_the_report_engine_never_imports_prefect() -> None:
    probe = "import sys, evals.report; print('prefect' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.strip() == "False", done.stderr


def test_markdown_summary_of_an_unknown_run_is_a_user_error(built: Built) -> None:
    with pytest.raises(UserError, match="no committed run 'nope'"):
        run_summary_markdown(built.history.results, "nope", policies=POLICIES)


def test_agents_without_runs_or_without_a_contract_still_get_a_page(
    built: Built, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    report = build_report(tmp_path / "empty", tmp_path / "site", policies=POLICIES)
    text = (report.out / "agents" / "billing-assistant.html").read_text()
    assert "No runs yet: nothing shows this agent can hold any level." in text
    assert "No runs to chart yet." in text
    (tmp_path / "policies").mkdir()
    report = build_report(built.history.results, tmp_path / "site2", policies=tmp_path / "policies")
    assert report.agents == ["account-support", "billing-assistant", "returns-concierge"]
    text = (report.out / "agents" / "returns-concierge.html").read_text()
    assert "no contract for &#x27;returns-concierge&#x27;" in text
    assert "Latest run fail at constrained." in text
    assert 'class="thr current"' in text  # thresholds as stored by the latest run


def test_right_after_a_rollback_the_active_version_is_not_judged_by_the_old_run(
    tmp_path: Path,
) -> None:
    history = write_history(tmp_path / "results", nights=2)  # v2 ships, and is rolled back, last
    report = build_report(history.results, tmp_path / "site", policies=POLICIES)
    text = (report.out / "agents" / "account-support.html").read_text()
    assert "Not known yet: v1 is active at approval but no run has measured it since v2" in text
    assert "Open incidents (1)" in text


def test_every_kind_of_channel_is_named_on_the_scorecard() -> None:
    from evals.contract import EmailChannel, EventChannel, WebhookChannel
    from evals.report._pages import _channel

    email = EmailChannel(
        kind="email", to=["ops@x.example"], sender="ig@x.example", smtp_host="smtp"
    )
    assert _channel(email) == "email to ops@x.example"
    assert _channel(EventChannel(kind="event")) == "Prefect event"
    hook = WebhookChannel(url="https://hooks.example/T0/secret-path")
    assert _channel(hook) == "webhook hooks.example"
    assert _channel(WebhookChannel(url_env="OPS_HOOK")) == "webhook $OPS_HOOK"
