"""The static report: what each page says (its view model), and the written files as a parsed
DOM: how pages link, the Content-Security-Policy, escaping, masking; and the Markdown summary."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import pytest
from jinja2 import UndefinedError

from evals.contract import EmailChannel, EventChannel, WebhookChannel
from evals.errors import UserError
from evals.report import (
    AgentPage,
    Report,
    Site,
    build_report,
    run_summary_markdown,
    run_summary_table,
    site_pages,
)
from evals.report._render import CSP, CSS, SCRIPT, environment
from evals.report._views import channel_text
from evals.store import ResultsStore
from tests.evals.test_report_history import (
    HOSTILE,
    ROOT,
    START,
    Agent,
    History,
    hostile_project,
    run_night,
    write_history,
)

POLICIES = ROOT / "policies"


@dataclass
class Built:
    history: History
    site: Site
    report: Report

    def dom(self, relative: str) -> lxml.html.HtmlElement:
        return parse(self.report.out / relative)


def parse(path: Path) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("report")
    history = write_history(tmp / "results", nights=4, ci=True)
    site = site_pages(history.results, policies=POLICIES)
    report = build_report(history.results, tmp / "site", policies=POLICIES)
    return Built(history, site, report)


def _facts(root: lxml.html.HtmlElement, xpath: str) -> dict[str, str]:
    """The ``dt`` → ``dd`` text of the first ``dl.facts`` matched by ``xpath``."""
    (dl,) = root.xpath(xpath)[:1]
    return {
        dt.text_content(): dt.getnext().text_content()
        for dt in dl.iterchildren("dt")  # type: ignore[union-attr]
    }


def _attributes(root: lxml.html.HtmlElement) -> list[tuple[str, str, str]]:
    """Every ``(tag, attribute, value)`` the page builds."""
    return [
        (str(element.tag), name, value)
        for element in root.iter()
        if isinstance(element.tag, str)
        for name, value in element.attrib.items()
    ]


# --- the site as files --------------------------------------------------------------------------


@pytest.mark.model
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
    assert len(built.report.pages) == 1 + len(built.site.agents) + len(built.site.runs)


@pytest.mark.model
def test_every_link_is_relative_and_resolves(built: Built) -> None:
    for page in built.report.pages:
        root = parse(page)
        links = [v for _, name, v in _attributes(root) if name in {"href", "src", "xlink:href"}]
        assert links, page.name
        for link in links:
            if link == "data:,":
                continue
            parts = urlsplit(link)
            assert not parts.scheme, f"{page.name} links outside: {link}"
            assert not parts.netloc, f"{page.name} links outside: {link}"
            target = (page.parent / parts.path).resolve() if parts.path else page
            assert target.is_file(), f"{page.name}: {link} is broken"
        # Only the report's own inline script, which the policy admits by hash.
        assert all(not s.get("src") for s in root.iter("script"))


def _hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@pytest.mark.model
def test_pages_carry_a_strict_content_security_policy(built: Built) -> None:
    assert "default-src 'none'" in CSP
    assert "unsafe-inline" not in CSP
    for page in built.report.pages:
        root = parse(page)
        (meta,) = root.xpath("//meta[@http-equiv='Content-Security-Policy']")
        assert meta.get("content") == CSP
        # The inline blocks are exactly the package's files, so their hashes match the policy.
        (style,) = root.iter("style")
        assert style.text == CSS
        assert f"style-src 'sha256-{_hash(style.text)}'" in CSP
        scripts = list(root.iter("script"))
        assert [s.text for s in scripts] in ([], [SCRIPT])
        for script in scripts:
            assert f"script-src 'sha256-{_hash(script.text)}'" in CSP
    run_page = built.report.out / "runs" / "returns-concierge" / f"{built.history.ci_run}.html"
    assert len(list(parse(run_page).iter("script"))) == 1  # the filters


def test_templates_escape_everything_and_refuse_unknown_names() -> None:
    env = environment()
    assert env.from_string("<p title='{{ x }}'>{{ x }}</p>").render(x="<b>'&\"") == (
        "<p title='&lt;b&gt;&#39;&amp;&#34;'>&lt;b&gt;&#39;&amp;&#34;</p>"
    )
    with pytest.raises(UndefinedError):
        env.from_string("{{ page.nothing }}").render(page=object())


# --- what the pages say -------------------------------------------------------------------------


@pytest.mark.model
def test_the_scorecard_of_the_rolled_back_agent(built: Built) -> None:
    page = built.site.agent("account-support")
    # The level it holds now, where it came from, and the open incident.
    assert page.fact("holds") == "approval"
    assert page.fact("last level change").startswith("rollback on ")
    assert page.fact("last level change").endswith("constrained → approval, version v2 → v1")
    (incident,) = page.open_incidents
    assert (incident.kind, incident.status.text, incident.status.badge) == (
        "rollback",
        "open",
        "fail",
    )
    facts = {f.label: f.text for f in incident.facts}
    assert facts["closes when"] == "a run passes every gate at constrained"
    assert facts["level"] == "constrained → approval"
    # The contract: outcome before → target with window and owner, adoption, workflow.
    outcomes = {o.name: o for o in page.outcomes}
    business = outcomes["Account tickets handled per agent-hour"]
    assert (business.change, business.owner) == (
        "7 → 18 tickets/h",
        "support-analytics@contoso.example",
    )
    assert any(o.group == "adoption" and o.change == "0% → 50%" for o in page.outcomes)
    assert any(o.name.startswith("error budget") for o in page.outcomes)
    # The next level's gate and the paths.
    assert "next: constrained" in page.gate_headers
    paths = {f.label: f.text for f in page.paths}
    assert "webhook $ACCOUNT_ALERTS_WEBHOOK" in paths["told through"]
    assert paths["demotes to"] == "approval"
    # A trend chart per gated metric (current and next level), with the rollback on its axis.
    charts = {c.metric: c for c in page.charts}
    assert set(charts) >= {"policy_violation_rate", "faithfulness", "hallucination_rate"}
    chart = charts["policy_violation_rate"]
    assert [e.cls for e in chart.events] == ["ev rollback"]
    assert len(chart.versions) == 2  # v1 → v2 → v1
    assert len(chart.points) == len(built.history.runs["account-support"])

    # The same on the written page, read back from the DOM.
    root = built.dom("agents/account-support.html")
    autonomy = _facts(root, "//h2[@id='autonomy']/following-sibling::dl[1]")
    assert autonomy["holds"] == "approval"
    assert root.xpath("string(//h2[@id='incidents'])") == "Open incidents (1)"
    (shown,) = root.xpath("//div[contains(@class, 'incident')]")
    assert shown.get("data-incident") == "rollback"
    assert shown.get("data-incident-id") == str(incident.id)
    svg = root.xpath("//svg[@data-metric='policy_violation_rate']")[0]
    assert svg.get("data-points") == str(len(chart.points))
    assert len(svg.xpath(".//circle")) == len(chart.points)
    assert len(svg.xpath(".//path[contains(@class, 'ev rollback')]")) == 1


@pytest.mark.model
def test_the_escalated_agent_is_not_trusted_with_more(built: Built) -> None:
    page = built.site.agent("returns-concierge")
    assert page.answer.tone == "fail"
    assert page.answer.headline == "No: v2 at constrained does not hold its current level."
    assert any(r.startswith("hallucination_rate ≤ 0.15: fail") for r in page.answer.reasons)
    # Two nightly breaches, one incident from the ledger, with both escalations behind it.
    (incident,) = page.open_incidents
    assert incident.title.endswith(", 2 runs")
    assert len(incident.trail) == 2
    root = built.dom("agents/returns-concierge.html")
    answer = root.xpath("//div[@id='answer']")[0]
    assert "No: v2 at constrained does not hold its current level." in answer.text_content()
    index = built.dom("index.html")
    cards = index.xpath("//section[@data-agent]")
    assert [c.get("data-agent") for c in cards] == [a.agent for a in built.site.agents]
    concierge = next(c for c in built.site.index.cards if c.agent == "returns-concierge")
    assert concierge.open_incidents == 1


@pytest.mark.model
def test_agents_with_owner_labels_show_their_judges_agreement_with_its_interval(
    built: Built,
) -> None:
    # returns-concierge: gated at its next level; account-support: only `expanded` gates it,
    # two levels up, and its page shows it all the same, with what the judge got wrong.
    shown = {}
    for agent in ("returns-concierge", "account-support"):
        rows = {g.metric: g for g in built.site.agent(agent).gates}
        row = rows["judge_agreement"]
        assert row.interval.startswith("[")
        assert row.n == "60"
        root = built.dom(f"agents/{agent}.html")
        (tr,) = root.xpath("//table[@class='gates']//tr[@data-metric='judge_agreement']")
        cells = [td.text_content().strip() for td in tr.iterchildren("td")]
        assert cells[1:4] == [row.value, row.interval, "60"]
        shown[agent] = row
    account = shown["account-support"]
    assert (account.value, account.now, account.next) == ("0.580", None, None)
    assert account.why.startswith(
        "at the judge's own threshold: of the 22 answers you labelled unsupported it catches 7"
    )
    assert account.why.endswith("expanded needs ≥ 0.75")
    assert shown["returns-concierge"].next is not None
    assert "judge_agreement" not in {g.metric for g in built.site.agent("billing-assistant").gates}


@pytest.mark.model
def test_the_healthy_agent_says_what_the_next_level_needs(built: Built) -> None:
    page = built.site.agent("billing-assistant")
    assert page.open_incidents == []
    assert "not ready for expanded" in page.answer.headline
    # Its golden gates for expanded pass (0 of 48 bounds a rate below 7.4% ≤ 0.08), but this
    # history has no production telemetry, so the telemetry gates of expanded cannot pass.
    assert page.answer.reasons == [
        "escalation_rate ≤ 0.35: fail — no data: the run did not measure this metric",
        "customer_outcome_progress ≥ 0: fail — no data: the run did not measure this metric",
    ]
    root = built.dom("agents/billing-assistant.html")
    assert root.xpath("string(//h2[@id='incidents'])") == "Open incidents (0)"


@pytest.mark.model
def test_run_page_drills_into_failing_cases_with_evidence(built: Built) -> None:
    run_id = built.history.runs["returns-concierge"][-1]
    page = built.site.run(run_id)
    assert page.filters is not None
    assert page.filters.total == len(page.cases) > 0
    assert {o.value for o in page.filters.metrics} >= {"faithfulness", "hallucination"}
    ungrounded = [c for c in page.cases if c.metrics[:2] == ["faithfulness", "hallucination"]]
    assert ungrounded
    first, second = ungrounded[0].failures[:2]
    assert first.judge == "word-overlap (test)"
    assert first.claims
    assert second.same_as == "faithfulness"  # the shared claims are shown once
    # Inputs come from the dataset file (the store keeps none).
    store = ResultsStore(str(built.history.results))
    run = store.run(run_id)
    assert run is not None
    failing = {s.case_id for s in store.samples(run) if s.passed is False}
    dataset = ROOT / "datasets" / "returns-concierge" / "cases.jsonl"
    inputs = {
        row["id"]: row["input"]
        for row in map(json.loads, dataset.read_text(encoding="utf-8").splitlines())
        if row["id"] in failing
    }
    assert inputs
    assert all(c.input == inputs[c.case_id] for c in page.cases if c.case_id in inputs)

    root = built.dom(f"runs/returns-concierge/{run_id}.html")
    metric_options = root.xpath("//select[@id='filter-metric']/option/@value")
    assert metric_options == ["", *(o.value for o in page.filters.metrics)]
    tag_options = root.xpath("//select[@id='filter-tag']/option/@value")
    assert tag_options == ["", *(o.value for o in page.filters.tags)]
    articles = root.xpath("//article[@data-case]")
    assert [a.get("data-case") for a in articles] == [c.case_id for c in page.cases]
    article = articles[[c.case_id for c in page.cases].index(ungrounded[0].case_id)]
    assert json.loads(article.get("data-metrics"))[:2] == ["faithfulness", "hallucination"]
    assert article.get("id") == f"case-{ungrounded[0].case_id}"
    headers = [th.text_content() for th in article.xpath(".//table//th")]
    assert "closest or supporting passage" in headers
    assert article.xpath("string(.//pre[@class='text'][1])") == ungrounded[0].input


@pytest.mark.model
def test_personal_data_is_masked_everywhere(built: Built) -> None:
    store = ResultsStore(str(built.history.results))
    leaked = next(
        s
        for s in store.samples(store.runs("account-support"))
        if s.metric == "policy_violation" and s.passed is False
    )
    violation = leaked.evidence["violations"][0]
    # The store keeps the output masked; the raw value is in the example's recording.
    recorded = {
        (row["case_id"], row["version"]): row["output"]
        for row in map(json.loads, (ROOT / "datasets" / "account-support" / "outputs.jsonl").open())
    }[(leaked.case_id, leaked.version)]
    assert (
        leaked.output
        == (leaked.output or "")[: violation["start"]]
        + violation["masked"]
        + (leaked.output or "")[violation["end"] :]
    ), "the finding points at its masked span in the stored output"
    raw = next(
        w.strip(".,;:()")
        for w in recorded.split()
        if ("@" in w or sum(ch.isdigit() for ch in w) >= 4) and w not in (leaked.output or "")
    )
    assert raw not in (leaked.output or "")
    assert raw not in json.dumps(leaked.evidence)
    page = built.site.run(leaked.run_id)
    case = page.case(leaked.case_id)
    assert case is not None
    assert case.output is not None
    assert any(p.rule and p.text == violation["masked"] for p in case.output)
    for path in built.report.pages:
        root = parse(path)
        shown = [root.text_content(), *(v for _, _, v in _attributes(root))]
        assert not any(raw in text for text in shown), f"{raw!r} shown on {path.name}"
    root = built.dom(f"runs/account-support/{leaked.run_id}.html")
    marks = root.xpath(f"//article[@data-case='{leaked.case_id}']//mark[@class='masked']")
    assert violation["masked"] in [m.text_content() for m in marks]


@pytest.mark.model
def test_ci_run_shows_candidate_vs_baseline(built: Built) -> None:
    page = built.site.run(built.history.ci_run or "")
    comparison = page.comparison
    assert comparison is not None
    assert comparison.baseline.text == built.history.baseline_run
    assert (
        comparison.baseline.href
        == f"../../runs/returns-concierge/{built.history.baseline_run}.html"
    )
    assert comparison.worse_total >= 10  # v2's ungrounded promises, case by case
    newly = [w for w in comparison.worse if w.newly_failing]
    assert newly
    assert comparison.worse[: len(newly)] == newly  # newly failing first
    root = built.dom(f"runs/returns-concierge/{built.history.ci_run}.html")
    assert root.xpath("string(//h3[starts-with(., 'Cases that got worse')])") == (
        f"Cases that got worse ({comparison.worse_total})"
    )
    rows = root.xpath("//table[@class='worse']/tbody/tr")
    assert len(rows) == len(comparison.worse)
    assert json.loads(rows[0].get("data-metrics")) == [newly[0].scorer]
    # CI candidates stay off the trends, and are marked in the runs table.
    scorecard = built.site.agent("returns-concierge")
    assert any(
        r.run.text == built.history.ci_run and r.trigger == "ci (vs baseline)"
        for r in scorecard.runs
    )
    assert all(
        len(c.points) == len(built.history.runs["returns-concierge"]) for c in scorecard.charts
    )
    assert built.history.ci_run not in scorecard.fact("latest run")


@pytest.mark.model
def test_a_ci_run_without_a_stored_baseline_has_no_comparison(tmp_path: Path) -> None:
    history = write_history(tmp_path / "results", nights=1)
    concierge = Agent(POLICIES / "returns-concierge.yaml")
    rng = random.Random(5)
    when = START + timedelta(days=2)
    alone = run_night(concierge, history.results, when, None, rng, "ci", "v2")
    gone = run_night(
        concierge, history.results, when + timedelta(minutes=5), None, rng, "ci", "v2",
        baseline_run_id="20260101T000000Z-0badc0de",
    )  # fmt: skip
    site = site_pages(history.results, policies=POLICIES)
    without = site.run(alone.record.run_id)
    assert without.comparison is None
    assert without.notes == []
    missing = site.run(gone.record.run_id)
    assert missing.comparison is None
    assert missing.notes == [
        "baseline run 20260101T000000Z-0badc0de is not in this results store: "
        "no candidate-vs-baseline view"
    ]


def test_untrusted_text_is_escaped_everywhere(tmp_path: Path) -> None:
    policies, results = hostile_project(tmp_path)
    report = build_report(results, tmp_path / "site", policies=policies)
    roots = {p.name: parse(p) for p in report.pages}
    for name, root in roots.items():
        tags = {str(e.tag) for e in root.iter() if isinstance(e.tag, str)}
        attributes = _attributes(root)
        # Markup in an output, input, context, tag, case id, rule or contract built nothing.
        assert not {"img", "b", "iframe", "object"} & tags, name
        assert not [a for _, a, _ in attributes if a.startswith("on")], name
        assert [s.text for s in root.iter("script")] in ([], [SCRIPT]), name
        assert [a for a in root.iter("a") if urlsplit(a.get("href", "")).scheme] == [], name
        assert not [v for _, _, v in attributes if "javascript:" in v.lower()], name
    run_name = next(n for n in roots if n.startswith("2026"))
    run_root = roots[run_name]
    outputs = [p.text_content() for p in run_root.xpath("//article//pre[@class='text']")]
    assert any(HOSTILE in text for text in outputs)  # the output, as text
    assert any(t.endswith(" <script>window.__pwned = 5</script>") for t in outputs)  # the input
    assert "</pre><script>window.__pwned = 6</script>" in outputs  # a context
    ids = [a.get("id") for a in run_root.xpath("//article")]
    assert 'case-c2"><svg onload="window.__pwned = 4">' in ids
    rules = [td.text_content() for td in run_root.xpath("//td[@class='reason']")]
    assert any(r.startswith("<script>window.__pwned = 10</script>") for r in rules)
    agent_root = roots["tiny-agent.html"]
    assert "Cost </td><script>window.__pwned = 3</script>" in agent_root.text_content()
    assert 'owner@example.test <a href="javascript:window.__pwned = 9">me</a>' in (
        agent_root.text_content()
    )
    assert '<b onmouseover="window.__pwned = 2">for</b>' in roots["index.html"].text_content()


@pytest.mark.model
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
    (page,) = site_pages(results, policies=policies).runs
    assert any("changed since this run" in n for n in page.notes)
    report = build_report(results, tmp_path / "site", policies=policies)
    run_page = next(p for p in report.pages if p.parent.name == "tiny-agent")
    notes = [n.text_content() for n in parse(run_page).xpath("//div[@class='note']")]
    assert notes == page.notes


@pytest.mark.model
def test_agents_without_runs_or_without_a_contract_still_get_a_page(
    built: Built, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    empty = site_pages(tmp_path / "empty", policies=POLICIES).agent("billing-assistant")
    assert empty.answer.headline == "No runs yet: nothing shows this agent can hold any level."
    assert empty.charts == []
    assert empty.runs == []
    report = build_report(tmp_path / "empty", tmp_path / "site", policies=POLICIES)
    root = parse(report.out / "agents" / "billing-assistant.html")
    assert "No runs to chart yet." in root.xpath(
        "string(//h2[@id='trends']/following-sibling::p[1])"
    )
    (tmp_path / "policies").mkdir()
    bare = site_pages(built.history.results, policies=tmp_path / "policies")
    assert [a.agent for a in bare.agents] == [
        "account-support",
        "billing-assistant",
        "returns-concierge",
    ]
    page: AgentPage = bare.agent("returns-concierge")
    assert page.problems == [
        f"no contract for 'returns-concierge' in {tmp_path / 'policies'}: thresholds are as stored"
    ]
    assert page.answer.headline == "Latest run fail at constrained."
    assert page.outcomes == []
    assert page.paths == []
    # Thresholds as stored by the latest run: the charts still draw the current level's line.
    assert any(s.cls == "thr current" for c in page.charts for s in c.thresholds)


@pytest.mark.model
def test_right_after_a_rollback_the_active_version_is_not_judged_by_the_old_run(
    tmp_path: Path,
) -> None:
    history = write_history(tmp_path / "results", nights=2)  # v2 ships, and is rolled back, last
    page = site_pages(history.results, policies=POLICIES).agent("account-support")
    assert page.answer.headline.startswith(
        "Not known yet: v1 is active at approval but no run has measured it since v2"
    )
    assert len(page.open_incidents) == 1


def test_every_kind_of_channel_is_named_on_the_scorecard() -> None:
    email = EmailChannel(
        kind="email", to=["ops@x.example"], sender="ig@x.example", smtp_host="smtp"
    )
    assert channel_text(email) == "email to ops@x.example"
    assert channel_text(EventChannel(kind="event")) == "Prefect event"
    hook = WebhookChannel(url="https://hooks.example/T0/secret-path")
    assert channel_text(hook) == "webhook hooks.example"
    assert channel_text(WebhookChannel(url_env="OPS_HOOK")) == "webhook $OPS_HOOK"


# --- the Markdown summary ---------------------------------------------------------------------------


@pytest.mark.model
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
    (run,) = ResultsStore(str(results)).runs()
    text = run_summary_markdown(
        results, run.run_id, policies=policies, report_url="file:///r/a (b).html"
    )
    assert "<script>" not in text
    assert "<svg" not in text
    assert "&lt;script&gt;window.\\_\\_pwned" in text
    assert "[Open the report](file:///r/a%20%28b%29.html)" in text


@pytest.mark.model
def test_markdown_summary_of_an_unknown_run_is_a_user_error(built: Built) -> None:
    with pytest.raises(UserError, match="no committed run 'nope'"):
        run_summary_markdown(built.history.results, "nope", policies=POLICIES)
