"""The names every layer shares: levels, triggers, severities, judge tiers, a few defaults.

Plain constants with no imports, so the CLI can build its options (``--to LEVEL``,
``--trigger``) without loading the engine; the contract model and the runs re-export them.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AGENT_PATTERN",
    "DEFAULT_RUN_PAGES",
    "JUDGE_TIERS",
    "LEVELS",
    "SEVERITIES",
    "TRIGGERS",
    "JudgeTier",
    "Level",
    "Severity",
    "Trigger",
    "level_rank",
]

AGENT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""An agent's name: lower-case letters, digits and dashes (it names files and partitions)."""

Level = Literal["draft", "approval", "constrained", "expanded"]
LEVELS: tuple[Level, ...] = ("draft", "approval", "constrained", "expanded")
"""The autonomy ladder, lowest first."""

Trigger = Literal["nightly", "promotion", "ci", "manual"]
TRIGGERS: tuple[Trigger, ...] = ("nightly", "promotion", "ci", "manual")
"""Why a run happens."""

Severity = Literal["medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("medium", "high", "critical")
"""How bad an incident is, mildest first."""

JudgeTier = Literal["offline", "nli", "llm", "ragas"]
JUDGE_TIERS: tuple[JudgeTier, ...] = ("offline", "nli", "llm", "ragas")
"""The grounding judges behind one interface."""

DEFAULT_RUN_PAGES = 10
"""Run pages per agent in the report: the latest runs, CI runs and incidents' runs."""


def level_rank(level: Level) -> int:
    """Position of a level on the ladder: draft 0 … expanded 3."""
    return LEVELS.index(level)
