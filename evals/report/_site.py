"""The static site: which runs get a page, their view models, and swapping the site in whole.

Layout under ``--out``::

    index.html                       every agent at a glance
    agents/<agent>.html              the one-page Agent Impact Contract, trends, runs, decisions
    runs/<agent>/<run_id>.html       a run's gates, failing cases and (CI) candidate vs baseline

:func:`site_pages` reads the store once and builds every page's view model (``_views``);
:func:`build_report` renders them (``_render``) into a fresh folder and swaps it in. Pages link
to each other relatively and embed their style, script and charts, so the folder works from
``file://``, from any static host, or zipped and mailed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from evals.errors import UserError
from evals.report._data import (
    MONITORING_TRIGGERS,
    AgentReport,
    CaseSource,
    case_masks,
    compare_runs,
    failing_cases,
    load_agents,
)
from evals.report._render import render
from evals.report._views import (
    AgentPage,
    IndexPage,
    Links,
    RunPage,
    agent_page,
    comparison_section,
    index_page,
    run_page,
)
from evals.store import ResultsStore, RunRecord, SampleRecord, valid_run_id
from evals.vocab import AGENT_PATTERN, DEFAULT_RUN_PAGES

__all__ = ["DEFAULT_RUN_PAGES", "MARKER", "Report", "Site", "build_report", "site_pages"]


MARKER = ".impactgate-report"
"""Marks a folder as a report, so a rebuild may replace it (and nothing else)."""

_AGENT = re.compile(AGENT_PATTERN)


@dataclass
class Report:
    """What was written."""

    out: Path
    index: Path
    pages: list[Path] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What could not be read or shown, in words."""


def _pick_runs(agent: AgentReport, count: int) -> list[RunRecord]:
    """Runs that get a page: the latest golden, CI and production runs, and incidents' runs."""
    chosen: dict[str, RunRecord] = {}
    by_id = {r.run_id: r for r in agent.runs}
    ci = [r for r in agent.runs if r.trigger not in MONITORING_TRIGGERS]
    for run in [*agent.monitoring_runs[-count:], *ci[-count:], *agent.production_runs[-count:]]:
        chosen[run.run_id] = run
    incident_runs = [
        by_id[i.last_run_id] for i in reversed(agent.incidents) if i.last_run_id in by_id
    ]
    for run in incident_runs[-count:]:
        chosen[run.run_id] = run
    return [r for r in chosen.values() if valid_run_id(r.run_id)]


def _prepare_out(out: Path) -> Path:
    """A fresh sibling folder to build into; refuses to replace a folder that is not a report."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise UserError.single(
            str(out),
            "--out",
            "exists and is not an impactgate report; pass an empty or new folder",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    staging.mkdir()
    (staging / MARKER).write_text("written by `impactgate report`; rebuilt in full each time\n")
    return staging


def _swap_in(staging: Path, out: Path) -> None:
    """Replace ``out`` with ``staging``: readers see the old site or the new one, never half."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.{secrets.token_hex(4)}.old"
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write(path: Path, text: str, pages: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    pages.append(path)


@dataclass
class Site:
    """Every page of a report as its view model, before rendering."""

    index: IndexPage
    agents: list[AgentPage]
    runs: list[RunPage]
    notes: list[str]
    """What could not be read or shown, in words."""

    def agent(self, name: str) -> AgentPage:
        """One agent's page.

        Raises:
            KeyError: the agent has no page.
        """
        for page in self.agents:
            if page.agent == name:
                return page
        raise KeyError(name)

    def run(self, run_id: str) -> RunPage:
        """One run's page.

        Raises:
            KeyError: the run has no page.
        """
        for page in self.runs:
            if page.run_id == run_id:
                return page
        raise KeyError(run_id)


def site_pages(
    results: str | Path,
    *,
    policies: str | Path = "policies",
    agents: Sequence[str] = (),
    run_pages: int = DEFAULT_RUN_PAGES,
) -> Site:
    """Read the store, the ledger and the contracts, and build every page's view model.

    Args:
        results: results root (a path, or a URI pyarrow understands).
        policies: folder of contracts (outcomes, gates, escalation paths; datasets for inputs).
        agents: only these agents; all agents with a contract or results by default.
        run_pages: how many of each agent's latest runs (and latest CI runs, and latest
            incident runs) get a drill-down page.

    Raises:
        UserError: no results folder, or an unknown agent.
    """
    reports, notes = load_agents(results, policies, agents)
    store = ResultsStore(str(results))
    picked: dict[str, list[RunRecord]] = {}
    for agent in reports:
        if not _AGENT.match(agent.agent):
            notes.append(f"agent name {agent.agent!r} cannot name a page; left out")
            continue
        picked[agent.agent] = _pick_runs(agent, run_pages)
    shown = [a for a in reports if a.agent in picked]
    links = Links({name: {r.run_id for r in runs} for name, runs in picked.items()})
    by_id = {r.run_id: r for a in shown for r in a.runs}
    baselines = {
        r.baseline_run_id: by_id[r.baseline_run_id]
        for runs in picked.values()
        for r in runs
        if r.baseline_run_id and r.baseline_run_id in by_id
    }
    wanted = [r for runs in picked.values() for r in runs] + list(baselines.values())
    samples: dict[str, list[SampleRecord]] = {r.run_id: [] for r in wanted}
    for sample in store.samples(wanted):
        samples[sample.run_id].append(sample)
    run_views = []
    for agent in shown:
        source = CaseSource(agent.contract, store)
        for run in picked[agent.agent]:
            run_samples = samples.get(run.run_id, [])
            cases, case_note = source.for_run(
                run, sorted({s.case_id for s in run_samples}) if run.source == "production" else ()
            )
            comparison = None
            baseline_note = None
            if run.baseline_run_id:
                baseline = by_id.get(run.baseline_run_id)
                if baseline is None:
                    baseline_note = (
                        f"baseline run {run.baseline_run_id} is not in this results store: "
                        "no candidate-vs-baseline view"
                    )
                else:
                    base_samples = samples.get(baseline.run_id, [])
                    comparison = comparison_section(
                        compare_runs(base_samples, run_samples, agent.contract, run.level),
                        baseline,
                        links,
                        cases,
                        (case_masks(base_samples), case_masks(run_samples)),
                    )
            run_views.append(
                run_page(
                    agent,
                    run,
                    failing_cases(run, run_samples),
                    cases,
                    case_note,
                    comparison,
                    baseline_note,
                )
            )
    return Site(
        index=index_page(shown, str(results), notes),
        agents=[agent_page(a, links) for a in shown],
        runs=run_views,
        notes=notes,
    )


def build_report(
    results: str | Path,
    out: str | Path,
    *,
    policies: str | Path = "policies",
    agents: Sequence[str] = (),
    run_pages: int = DEFAULT_RUN_PAGES,
    generated: datetime | None = None,
) -> Report:
    """Write the static report site for every agent (or those named).

    Args:
        results: results root (a path, or a URI pyarrow understands).
        out: folder to write; replaced in full when it already holds a report.
        policies: folder of contracts (outcomes, gates, escalation paths; datasets for inputs).
        agents: only these agents; all agents with a contract or results by default.
        run_pages: how many of each agent's latest runs (and latest CI runs, and latest
            incident runs) get a drill-down page.
        generated: the time printed on the pages (default: now).

    Raises:
        UserError: no results folder, an unknown agent, or ``out`` is some other folder.
    """
    generated = generated or datetime.now(UTC)
    site = site_pages(results, policies=policies, agents=agents, run_pages=run_pages)
    target = Path(out)
    staging = _prepare_out(target)
    pages: list[Path] = []
    try:
        _write(staging / "index.html", render(site.index, generated), pages)
        for agent in site.agents:
            _write(staging / "agents" / f"{agent.agent}.html", render(agent, generated), pages)
        for run in site.runs:
            _write(
                staging / "runs" / run.agent / f"{run.run_id}.html", render(run, generated), pages
            )
        _swap_in(staging, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return Report(
        target,
        target / "index.html",
        pages=[target / p.relative_to(staging) for p in pages],
        agents=[a.agent for a in site.agents],
        notes=site.notes,
    )
