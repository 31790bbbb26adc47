"""Which agents a change touches: the files each contract depends on, diffed against a git ref."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from evals.contract import Contract
from evals.errors import UserError

__all__ = [
    "AgentChange",
    "agent_inputs",
    "changed_agents",
    "changed_files",
    "export_ref",
    "repo_top",
    "resolve_ref",
]


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=60
        )
    except FileNotFoundError:
        raise UserError.single(
            str(root), "", "git is not installed; impactgate ci compares against a git ref"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise UserError.single(
            str(root), "--baseline", f"git {' '.join(args)} failed: {exc.stderr.strip()}"
        ) from None
    return done.stdout


def repo_top(root: Path) -> Path:
    """The top folder of the git checkout that holds ``root``."""
    return Path(_git(root, "rev-parse", "--show-toplevel").strip()).resolve()


def resolve_ref(root: Path, ref: str) -> str:
    """The commit a ref names.

    Raises:
        UserError: the folder is not a git checkout or the ref does not exist.
    """
    return _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()


def changed_files(root: Path, ref: str) -> set[str]:
    """Paths that differ between ``ref`` and the working tree, untracked files included.

    Paths are relative to the repository top.
    """
    top = repo_top(root)
    diff = _git(top, "diff", "--name-only", ref, "--")
    untracked = _git(top, "ls-files", "--others", "--exclude-standard")
    return {line for line in (diff + untracked).splitlines() if line.strip()}


def _module_file(module: str, root: Path) -> Path | None:
    sys.path.insert(0, str(root))
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    finally:
        sys.path.remove(str(root))
    return Path(spec.origin) if spec is not None and spec.origin else None


def agent_inputs(contract: Contract) -> list[Path]:
    """Every file whose change can change the agent's verdict.

    The contract, its dataset and recordings, prompt templates, the Python target's module,
    and the rule packs.
    """
    evals = contract.evals
    paths = [contract.source, contract.resolve(evals.dataset)]
    target = evals.target
    for name in ("outputs", "prompt", "system"):
        value = getattr(target, name, None)
        if isinstance(value, str):
            paths.append(contract.resolve(value))
    function = getattr(target, "function", None)
    if isinstance(function, str):
        module = _module_file(function.partition(":")[0], contract.root)
        if module is not None:
            paths.append(module)
    paths.extend(contract.resolve(p) for p in evals.policy.rule_packs)
    return list(dict.fromkeys(p.resolve() for p in paths))


@dataclass(frozen=True)
class AgentChange:
    """An agent and the changed files that concern it."""

    contract: Contract
    files: list[str]


def changed_agents(contracts: Iterable[Contract], root: Path, ref: str) -> list[AgentChange]:
    """Agents whose inputs differ from ``ref``."""
    top = repo_top(root)
    changed = changed_files(root, ref)
    result = []
    for contract in contracts:
        touched = []
        for path in agent_inputs(contract):
            try:
                relative = path.relative_to(top).as_posix()
            except ValueError:
                continue
            if relative in changed:
                touched.append(relative)
        if touched:
            result.append(AgentChange(contract, touched))
    return result


def export_ref(root: Path, ref: str) -> Path:
    """The tree at ``ref`` unpacked into a temporary folder (the caller removes it)."""
    top = repo_top(root)
    folder = Path(tempfile.mkdtemp(prefix="impactgate-baseline-"))
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=top, capture_output=True, check=True
    )
    with tempfile.TemporaryFile() as handle:
        handle.write(archive.stdout)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(folder, filter="data")
    return folder
