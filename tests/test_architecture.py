"""The layout DESIGN.md promises: no import cycle in the engine, and no Prefect in it."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.long  # several seconds: sent out early (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "evals"


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ENGINE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _imports(path: Path, module: str) -> set[str]:
    """Every module an ``evals`` module imports, TYPE_CHECKING imports and lazy ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def _package(module: str) -> str:
    """``evals.store._ledger`` → ``evals.store``; top-level modules stand for themselves."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_module_of_the_engine_imports_prefect_even_lazily() -> None:
    offenders = [
        name
        for name, path in _modules()
        if any(
            i == "prefect" or i.startswith(("prefect.", "prefect_")) for i in _imports(path, name)
        )
    ]
    assert offenders == [], "evals/ is a plain library; Prefect belongs in flows/"


def test_the_engine_packages_import_each_other_without_a_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for name, path in _modules():
        source = _package(name)
        for target in _imports(path, name):
            if target.startswith("evals.") and _package(target) != source:
                graph.setdefault(source, set()).add(_package(target))
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*trail, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert cycles == [], "packages of evals/ must form a layered graph"


def test_importing_the_engine_does_not_start_prefect() -> None:
    # Every engine package, the report and the run session included, in one fresh process.
    packages = ", ".join(sorted({_package(name) for name, _ in _modules()}))
    probe = f"import sys, {packages}; print(any(m.startswith('prefect') for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_only_the_store_reads_parquet() -> None:
    # Golden datasets may be Parquet files a user gives us; the dataset loader reads those.
    allowed = ("evals.store", "evals.dataset")
    readers = [
        name
        for name, path in _modules()
        if not name.startswith(allowed)
        and any(i.startswith(("pyarrow.parquet", "pyarrow.dataset")) for i in _imports(path, name))
    ]
    assert readers == [], "the store owns its records: read them through evals.store"


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"]])
def test_the_cli_answers_version_and_help_without_loading_the_engine(args: list[str]) -> None:
    probe = (
        "import sys\n"
        "from flows.cli.main import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
        "heavy = ('pyarrow', 'pydantic', 'numpy', 'prefect', 'litellm', 'torch', 'evals.contract')\n"
        "print(sorted({m.split('.')[0] if not m.startswith('evals') else m for m in sys.modules"
        " if m.startswith(heavy)}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", "the CLI imports the engine lazily"
