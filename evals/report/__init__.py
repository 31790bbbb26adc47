"""The report: a static HTML site per results store, and each run's summary as Markdown.

Pure engine code (no Prefect): it reads the results store, the ledger and the contracts and
writes files. ``build_report`` writes the site that ``impactgate report`` publishes;
``run_summary_markdown`` is the same per-run summary for a Prefect artifact. See
docs/report.md.
"""

from evals.report._data import (
    AgentReport,
    CaseFailure,
    MetricComparison,
    compare_runs,
    failing_cases,
    load_agents,
)
from evals.report._markdown import run_summary_markdown, run_summary_table
from evals.report._site import DEFAULT_RUN_PAGES, Report, build_report

__all__ = [
    "DEFAULT_RUN_PAGES",
    "AgentReport",
    "CaseFailure",
    "MetricComparison",
    "Report",
    "build_report",
    "compare_runs",
    "failing_cases",
    "load_agents",
    "run_summary_markdown",
    "run_summary_table",
]
