"""CI gating: which agents a change touches, their verdicts against a baseline, and reports."""

from evals.ci._changes import (
    AgentChange,
    agent_inputs,
    changed_agents,
    changed_files,
    export_ref,
    repo_top,
    resolve_ref,
)
from evals.ci._compare import AgentGate, case_values, compare_samples, gate_agent
from evals.ci._gate import default_baseline, gate_changes
from evals.ci._render import delta_text, junit_xml, markdown, observed_text

__all__ = [
    "AgentChange",
    "AgentGate",
    "agent_inputs",
    "case_values",
    "changed_agents",
    "changed_files",
    "compare_samples",
    "default_baseline",
    "delta_text",
    "export_ref",
    "gate_agent",
    "gate_changes",
    "junit_xml",
    "markdown",
    "observed_text",
    "repo_top",
    "resolve_ref",
]
