"""``prefect.yaml`` against the contracts: the nightly deployments run when the contracts say.

``impactgate serve`` builds its nightly schedules from each contract's ``evals.schedule``; a
project deployed with ``prefect deploy`` writes them into ``prefect.yaml`` by hand. Nothing
keeps the two in step but :func:`schedule_problems`, which ``impactgate validate`` reports. It
reads YAML only: no Prefect import, so validation stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from evals.contract import Contract, discover_contracts, load_contract, load_yaml
from evals.errors import Problem, UserError, display_path

__all__ = ["NIGHTLY_ENTRYPOINT", "schedule_problems"]

NIGHTLY_ENTRYPOINT = "flows/nightly_suite.py:nightly"
"""The entrypoint of a nightly deployment in ``prefect.yaml``."""


def _line(node: yaml.Node | None, *path: int | str) -> int | None:
    """1-based line of the node at ``path`` (or of the deepest one that exists)."""
    line = None if node is None else node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            node = None
        if node is None:
            return line
        line = node.start_mark.line + 1
    return line


def _cron(text: str) -> str:
    return " ".join(text.split())


def _contracts(policies: str | Path) -> list[Contract]:
    """The contracts that load; ``validate`` reports the others itself."""
    try:
        paths = discover_contracts(policies)
    except UserError:
        return []
    loaded = []
    for path in paths:
        try:
            loaded.append(load_contract(path))
        except UserError:
            continue
    return loaded


def schedule_problems(
    policies: str | Path = "policies",
    prefect_yaml: str | Path | None = None,
    contracts: Sequence[Contract] | None = None,
) -> list[Problem]:
    """Where ``prefect.yaml``'s nightly deployments disagree with the contracts' schedules.

    Every active schedule of every nightly deployment (entrypoint :data:`NIGHTLY_ENTRYPOINT`)
    that runs an agent (its ``agents`` parameter names it, or it has none) must be the
    agent's ``evals.schedule``: the same cron expression in the same time zone. An agent no
    scheduled nightly deployment runs is a problem too.

    Args:
        policies: the folder of contracts.
        prefect_yaml: the deployments file; by default ``prefect.yaml`` beside ``policies``
            (the project root). A project without one (served by ``impactgate serve``, which
            reads the schedules from the contracts) has nothing to disagree with.
        contracts: the loaded contracts, when the caller has them; otherwise those in
            ``policies`` that load (a broken contract is ``validate``'s to report).

    Returns:
        One problem per disagreement, pointing at ``prefect.yaml``'s line.
    """
    path = (
        Path(prefect_yaml) if prefect_yaml is not None else Path(policies).parent / "prefect.yaml"
    )
    if not path.is_file():
        return []
    shown = display_path(path)
    try:
        data, node = load_yaml(path)
    except UserError as exc:
        return exc.problems
    deployments = data.get("deployments") if isinstance(data, dict) else None
    nightly = [
        (i, d)
        for i, d in enumerate(deployments if isinstance(deployments, list) else [])
        if isinstance(d, dict) and d.get("entrypoint") == NIGHTLY_ENTRYPOINT
    ]
    if not nightly:
        return [
            Problem(
                f"{shown}:{_line(node, 'deployments')}",
                "deployments",
                f"no deployment runs {NIGHTLY_ENTRYPOINT}, so no contract's evals.schedule is "
                "kept; add the nightly deployment (see the repository's prefect.yaml)",
            )
        ]
    problems: list[Problem] = []
    for contract in contracts if contracts is not None else _contracts(policies):
        wanted = (_cron(contract.evals.schedule.cron), contract.evals.schedule.timezone)
        said = (
            f"its contract ({display_path(contract.source)}: evals.schedule) says "
            f"'{wanted[0]}' ({wanted[1]})"
        )
        scheduled = False
        for i, deployment in nightly:
            parameters: dict[str, Any] = deployment.get("parameters") or {}
            agents = parameters.get("agents")
            if agents is not None and contract.agent not in agents:
                continue
            name = deployment.get("name", f"#{i + 1}")
            for j, schedule in enumerate(deployment.get("schedules") or []):
                if not isinstance(schedule, dict) or schedule.get("active", True) is False:
                    continue
                where = f"{shown}:{_line(node, 'deployments', i, 'schedules', j)}"
                field = f"deployments[{name}].schedules[{j}]"
                scheduled = True
                if "cron" not in schedule:
                    problems.append(
                        Problem(
                            where,
                            field,
                            f"{contract.agent}: not a cron schedule, but {said}; "
                            "write it as `cron:` and `timezone:`",
                        )
                    )
                    continue
                found = (_cron(str(schedule["cron"])), str(schedule.get("timezone") or "UTC"))
                if found != wanted:
                    problems.append(
                        Problem(
                            where,
                            field,
                            f"{contract.agent} runs at '{found[0]}' ({found[1]}) here, but "
                            f"{said}; make them agree",
                        )
                    )
        if not scheduled:
            problems.append(
                Problem(
                    f"{shown}:{_line(node, 'deployments', nightly[0][0])}",
                    "deployments",
                    f"no scheduled nightly deployment runs {contract.agent}, but {said}; "
                    "schedule a nightly deployment whose `agents` include it (or name none)",
                )
            )
    return problems
