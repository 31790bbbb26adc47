"""A stand-in for a deployment system: the rollback hook of the example contracts.

A real hook would call your serving platform (switch a feature flag, re-point an alias,
redeploy a tag). This one records which version each agent should serve in a JSON file
(``$IMPACTGATE_SERVING_FILE``, default ``results/serving.json``), so the demo shows the hook
being called and a second rollback shows it is not called again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def switch_version(change: dict[str, Any]) -> None:
    """Point the agent at ``change["version_after"]``."""
    path = Path(os.environ.get("IMPACTGATE_SERVING_FILE", "results/serving.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    serving = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    serving[change["agent"]] = {
        "version": change["version_after"],
        "level": change["level_after"],
        "reason": change["reason"],
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(serving, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
