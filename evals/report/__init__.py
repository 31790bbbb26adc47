"""The report: a static HTML site per results store, and each run's summary as Markdown.

Pure engine code (no Prefect): it reads the results store, the ledger and the contracts and
writes files. ``site_pages`` builds each page's view model (plain dataclasses, numbers already
formatted), ``build_report`` renders them through Jinja2 templates with autoescape and writes
the site that ``impactgate report`` publishes; ``run_summary_markdown`` is the same per-run
summary for a Prefect artifact. See docs/report.md.
"""

from evals.report._data import (
    AgentReport,
    CaseFailure,
    MetricComparison,
    compare_runs,
    failing_cases,
    first_failing_cases,
    load_agents,
    stored_failing_cases,
)
from evals.report._markdown import run_summary_markdown, run_summary_table
from evals.report._render import render
from evals.report._site import DEFAULT_RUN_PAGES, Report, Site, build_report, site_pages
from evals.report._views import (
    AgentCard,
    AgentPage,
    CaseView,
    ComparisonSection,
    IncidentView,
    IndexPage,
    RunPage,
)

__all__ = [
    "DEFAULT_RUN_PAGES",
    "AgentCard",
    "AgentPage",
    "AgentReport",
    "CaseFailure",
    "CaseView",
    "ComparisonSection",
    "IncidentView",
    "IndexPage",
    "MetricComparison",
    "Report",
    "RunPage",
    "Site",
    "build_report",
    "compare_runs",
    "failing_cases",
    "first_failing_cases",
    "load_agents",
    "render",
    "run_summary_markdown",
    "run_summary_table",
    "site_pages",
    "stored_failing_cases",
]
