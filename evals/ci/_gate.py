"""Gating a working tree's changes: the procedure behind ``impactgate ci`` and the pytest plugin."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from evals.ci._changes import changed_agents, export_ref, repo_top, resolve_ref
from evals.ci._compare import AgentGate, gate_agent
from evals.contract import Contract, Level, discover_contracts, load_contract
from evals.errors import UserError, display_path
from evals.runs import RunSession, prepare, scoring_fingerprint
from evals.store import ResultsStore, RunRecord, existing_ledger

__all__ = ["default_baseline", "gate_changes"]

Log = Callable[[str], None]


def default_baseline(root: Path) -> str:
    """``origin/main``, ``main``, ``origin/master`` or ``master``, whichever exists, else HEAD."""
    for ref in ("origin/main", "main", "origin/master", "master"):
        try:
            resolve_ref(root, ref)
            return ref
        except UserError:
            continue
    return "HEAD"


@contextmanager
def _isolated_modules(contract: Contract) -> Iterator[None]:
    """Import a Python target's package afresh (from another checkout).

    The modules the candidate had imported are put back afterwards.
    """
    function = getattr(contract.evals.target, "function", None)
    if not isinstance(function, str):
        yield
        return
    package = function.partition(":")[0].split(".")[0]

    def ours(name: str) -> bool:
        return name == package or name.startswith(f"{package}.")

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def _stored_run(store: ResultsStore, contract: Contract) -> tuple[RunRecord | None, str]:
    """A stored run of exactly this version, dataset and scoring setup: ``(run, label)``."""
    plan = prepare(contract)
    version = plan.target.version()
    if plan.target.kind == "python":
        # A Python target's hash covers its module, not what the module imports: a stored
        # run might not be what the code does now, so it is evaluated afresh (it is local).
        return None, version.label
    scoring = scoring_fingerprint(contract)
    matching = [
        run
        for run in store.runs(contract.agent)
        if run.version_hash == version.hash
        and run.dataset_hash == plan.dataset.content_hash
        and run.scoring_hash == scoring
    ]
    return (matching[-1] if matching else None), version.label


def _run(
    store: ResultsStore,
    contract: Contract,
    level: Level,
    baseline_run: str | None,
    role: str,
    log: Log,
) -> tuple[RunRecord, str]:
    """Reuse a stored run of this exact setup, or evaluate and store one (trigger ``ci``)."""
    stored, version = _stored_run(store, contract)
    if stored is not None:
        log(f"{contract.agent} {role} {version}: stored run {stored.run_id}")
        return stored, "reused a stored run"
    log(f"{contract.agent} {role} {version}: evaluating")
    # A candidate is not deployed: the ledger is left alone, and nothing is journaled.
    with RunSession.open(
        contract,
        store.root,
        trigger="ci",
        level=level,
        sync_ledger=False,
        journal=False,
        baseline_run_id=baseline_run,
    ) as session:
        result = session.run(act=False).result
    return result.record, "evaluated"


def gate_changes(
    policies: str | Path,
    results: str,
    baseline: str | None = None,
    agents: Sequence[str] = (),
    log: Log = lambda _: None,
) -> tuple[str, list[AgentGate]]:
    """Gate every agent whose inputs changed against ``baseline`` (or the ``agents`` named).

    The candidate is the working tree; the baseline is the tree at the ref. Each side reuses a
    stored run of the same version, dataset and scoring setup, or is evaluated and stored.

    Returns:
        The baseline ref used and one verdict per gated agent.

    Raises:
        UserError: an unknown ref or agent, or a broken contract.
    """
    folder = Path(policies).resolve()
    root = folder.parent
    ref = baseline or default_baseline(root)
    resolve_ref(root, ref)
    contracts = [load_contract(p) for p in discover_contracts(folder)]
    by_name = {c.agent: c for c in contracts}
    unknown = [a for a in agents if a not in by_name]
    if unknown:
        raise UserError.single(
            display_path(folder), "--agent", f"no contract for agent '{unknown[0]}'"
        )
    changes = {c.contract.agent: c.files for c in changed_agents(contracts, root, ref)}
    selected = (
        [by_name[a] for a in agents] if agents else [c for c in contracts if c.agent in changes]
    )
    store = ResultsStore(results)
    ledger, _ = existing_ledger(results)
    verdicts: list[AgentGate] = []
    if not selected:
        return ref, verdicts
    top = repo_top(root)
    exported = export_ref(root, ref)
    try:
        for contract in selected:
            entry = ledger.get(contract.agent) if ledger else None
            level: Level = entry.level if entry else contract.autonomy.level
            notes: list[str] = []
            base_run: RunRecord | None = None
            base_path = exported / contract.source.relative_to(top)
            if base_path.is_file():
                base_contract = load_contract(
                    base_path, root=exported / root.resolve().relative_to(top)
                )
                with _isolated_modules(base_contract):
                    base_run, how = _run(store, base_contract, level, None, "baseline", log)
                notes.append(f"baseline ({ref}): {how}")
            else:
                notes.append(
                    f"no contract for {contract.agent} at {ref}: a new agent, absolute gates only"
                )
            candidate, how = _run(
                store, contract, level, base_run.run_id if base_run else None, "candidate", log
            )
            notes.append(f"candidate: {how}")
            verdicts.append(
                gate_agent(
                    contract,
                    level,
                    candidate,
                    store.samples(candidate),
                    base_run,
                    store.samples(base_run) if base_run else (),
                    changes.get(contract.agent, []),
                    notes,
                )
            )
    finally:
        shutil.rmtree(exported, ignore_errors=True)
    return ref, verdicts
