"""What ``impactgate validate`` checks beyond loading: what a contract points at exists.

Loading a contract checks what it says; these checks look at what it names: the files of its
path fields, a local NLI model folder, and the rollback hook's function. Nothing named is
executed: the hook's module is found on the import path and its source parsed, never imported,
so a pull request that adds a contract cannot run code by being validated.
"""

from __future__ import annotations

import ast
import json
import sys
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path

from evals.contract._model import Contract
from evals.contract._telemetry import PythonSource
from evals.errors import Problem, display_path

__all__ = ["reference_problems"]

_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _model_folder_problem(folder: Path) -> str | None:
    """What makes a folder unusable as a CrossEncoder NLI model, or ``None``."""
    config = folder / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{display_path(folder)} has no config.json; it is not a model folder"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{display_path(config)} cannot be read as JSON ({exc})"
    if not isinstance(data, dict):
        return f"{display_path(config)} is not a JSON object"
    labels = data.get("id2label")
    names = [str(v).lower() for v in labels.values()] if isinstance(labels, dict) else []
    if not any("entail" in name for name in names):
        return (
            f"{display_path(folder)} is not an NLI model: its labels are {sorted(names)}, none "
            "of them 'entailment'"
        )
    if not any((folder / name).is_file() for name in _WEIGHTS):
        return (
            f"{display_path(folder)} has no weights ({', '.join(_WEIGHTS[::2])}); copy the whole "
            "model folder"
        )
    return None


def _module_spec(name: str, root: Path) -> tuple[ModuleSpec | None, str]:
    """Find a module on the import path the hook runs with, importing nothing (not even parents).

    Returns:
        The spec (``None`` when not found) and the dotted part that could not be found.
    """
    locations: list[str] | None = [str(root), *sys.path]
    spec: ModuleSpec | None = None
    parts = name.split(".")
    for i in range(len(parts)):
        current = ".".join(parts[: i + 1])
        if locations is None:
            return None, current
        spec = PathFinder.find_spec(current, locations)
        if spec is None:
            return None, current
        locations = (
            list(spec.submodule_search_locations) if spec.submodule_search_locations else None
        )
    return spec, name


def _defines(body: list[ast.stmt], name: str) -> bool:
    """Whether a module's top level binds ``name`` (or may, through ``*`` or ``__getattr__``)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in (name, "__getattr__"):
                return True
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.partition(".")[0]
                if alias.name == "*" or bound == name:
                    return True
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                    return True
        elif isinstance(node, ast.If) and _defines([*node.body, *node.orelse], name):
            return True
        elif isinstance(node, ast.Try):
            handled = [statement for handler in node.handlers for statement in handler.body]
            if _defines([*node.body, *handled, *node.orelse, *node.finalbody], name):
                return True
    return False


def _function_problem(function: str, root: Path) -> str | None:
    """Why ``module:function`` (a rollback hook, a telemetry source) cannot be called, or None."""
    module, _, attribute = function.partition(":")
    spec, missing = _module_spec(module, root)
    if spec is None:
        return (
            f"cannot import '{module}': no module '{missing}' from the project root "
            f"{display_path(root)} or the installed packages"
        )
    origin = spec.origin
    if origin is None or not spec.has_location:
        return (
            f"'{module}' is a folder without __init__.py; name a module that defines '{attribute}'"
        )
    if not origin.endswith(".py"):
        return None  # a compiled module: its names cannot be read without importing it
    try:
        source = Path(origin).read_text(encoding="utf-8")
        tree = ast.parse(source, filename=origin)
    except SyntaxError as exc:
        return f"cannot import '{module}': {display_path(Path(origin))}:{exc.lineno}: {exc.msg}"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"cannot import '{module}': {display_path(Path(origin))} cannot be read ({exc})"
    if not _defines(tree.body, attribute):
        return f"'{module}' has no function '{attribute}' ({display_path(Path(origin))})"
    return None


def reference_problems(contract: Contract) -> list[Problem]:
    """Problems with what a loaded contract names, each at the contract's line and field.

    Missing files, a broken local NLI model folder, a rollback hook or python telemetry source
    that cannot be imported.
    """
    problems: list[Problem] = []
    for loc, written in contract.path_fields():
        field = ".".join(str(p) for p in loc)
        path = contract.resolve(written)
        is_model = loc == ("evals", "grounding", "model")
        if not path.exists():
            problem: str | None = (
                f"'{written}' does not exist (paths are relative to the project root, "
                f"{display_path(contract.root)})"
            )
        elif is_model:
            problem = (
                _model_folder_problem(path)
                if path.is_dir()
                else f"'{written}' is a file; give the model's folder"
            )
        else:
            problem = None if path.is_file() else f"'{written}' is a folder; give a file"
        if problem is not None:
            problems.append(Problem(contract.where(field), field, problem))
    functions: list[tuple[str, str]] = []  # checked without importing: no code of theirs runs
    hook = contract.autonomy.rollback.hook
    if hook is not None and hook.kind == "python" and hook.function is not None:
        functions.append(("autonomy.rollback.hook.function", hook.function))
    if contract.telemetry is not None:
        functions += [
            (f"telemetry.sources.{i}.function", source.function)
            for i, source in enumerate(contract.telemetry.sources)
            if isinstance(source, PythonSource)
        ]
    for field, function in functions:
        problem = _function_problem(function, contract.root)
        if problem is not None:
            problems.append(Problem(contract.where(field), field, problem))
    return problems
