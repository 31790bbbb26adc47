"""Loading contracts from YAML, with errors that point at the file, the line and the field."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from evals.contract import _model
from evals.contract._model import Contract
from evals.errors import Problem, UserError, did_you_mean, display_path

__all__ = [
    "discover_contracts",
    "load_contract",
    "load_yaml",
    "load_yaml_model",
    "select_contracts",
    "validation_problems",
]


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file into data and its node tree (for line numbers).

    Raises:
        UserError: the file is missing or is not valid YAML.
    """
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError.single(shown, "", "file not found") from None
    except UnicodeDecodeError as exc:
        raise UserError.single(shown, "", f"not UTF-8 text ({exc.reason})") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError.single(where, "", f"invalid YAML: {problem}") from None
    return data, node


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """1-based line of the deepest node along ``loc`` that exists in the YAML."""
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _field_vocabulary(modules: Iterable[Any]) -> set[str]:
    names: set[str] = set()
    for module in modules:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseModel):
                names.update(obj.model_fields)
    return names


_TAGS = {"replay", "python"}


def _message(error: ErrorDetails, vocabulary: set[str]) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        return f"unknown field '{name}'{did_you_mean(name, vocabulary)}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind in {"union_tag_invalid", "literal_error", "enum"}:
        got = error.get("input")
        message = f"{message} (got {got!r})"
    return message


def validation_problems(
    exc: ValidationError,
    shown: str,
    node: yaml.Node | None,
    modules: Iterable[Any] = (_model,),
) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into ``file:line: field: message`` problems."""
    vocabulary = _field_vocabulary(modules)
    problems = []
    for error in exc.errors():
        # Drop discriminator tags pydantic puts in the location (evals.target.replay.version).
        loc = [p for i, p in enumerate(error["loc"]) if not (i and p in _TAGS)]
        line = _line_of(node, loc)
        where = f"{shown}:{line}" if line else shown
        field = ".".join(str(p) for p in loc) or "(top level)"
        problems.append(Problem(where, field, _message(error, vocabulary)))
    return problems


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(
    path: Path, model: type[M], shape: str, modules: Iterable[Any]
) -> tuple[M, yaml.Node | None]:
    """Parse a YAML file and validate it as ``model``.

    Args:
        path: the file.
        model: the pydantic model of this kind of file.
        shape: what the top level should look like, for the error when it is not a mapping.
        modules: modules whose models' field names feed "did you mean" suggestions.

    Raises:
        UserError: every problem, each as ``file:line: field: message``.
    """
    shown = display_path(path)
    data, node = load_yaml(path)
    if not isinstance(data, dict):
        raise UserError.single(shown, "", f"expected {shape}")
    try:
        return model.model_validate(data), node
    except ValidationError as exc:
        raise UserError(validation_problems(exc, shown, node, modules)) from None


def load_contract(path: str | Path, root: str | Path | None = None) -> Contract:
    """Load and validate one contract.

    Args:
        path: the contract YAML.
        root: project root that relative paths in the contract resolve against; defaults to
            the parent of the folder holding the contract (the folder that holds ``policies/``).

    Raises:
        UserError: with every problem found, each as ``file:line: field: message``.
    """
    path = Path(path)
    shown = display_path(path)
    contract, node = load_yaml_model(
        path, Contract, "a contract: a YAML mapping with 'agent:' at the top", [_model]
    )
    if contract.agent != path.stem:
        raise UserError.single(
            f"{shown}:{_line_of(node, ['agent'])}",
            "agent",
            f"'{contract.agent}' does not match the file name '{path.name}'; "
            f"rename the file to '{contract.agent}.yaml' or change 'agent'",
        )
    contract._source = path.resolve()
    contract._root = Path(root).resolve() if root is not None else path.resolve().parent.parent
    return contract


def discover_contracts(policies: str | Path) -> list[Path]:
    """Every contract in a policies folder: ``*.yaml`` / ``*.yml`` directly inside it.

    Raises:
        UserError: the folder does not exist or holds no contract.
    """
    folder = Path(policies)
    if not folder.is_dir():
        raise UserError.single(
            display_path(folder), "", "policies folder not found; pass --policies"
        )
    paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not paths:
        raise UserError.single(
            display_path(folder), "", "no contracts (*.yaml) in this folder; see docs/contract.md"
        )
    return paths


def select_contracts(policies: str | Path, agents: list[str] | None = None) -> list[Path]:
    """Contract paths in ``policies``, limited to ``agents`` when given.

    Raises:
        UserError: an agent name matches no contract (with a suggestion).
    """
    paths = discover_contracts(policies)
    if not agents:
        return paths
    by_name = {load_contract(p).agent: p for p in paths}
    unknown = [a for a in agents if a not in by_name]
    if unknown:
        raise UserError.single(
            display_path(Path(policies)),
            "",
            f"no contract for agent '{unknown[0]}'{did_you_mean(unknown[0], by_name)}",
        )
    return [by_name[a] for a in agents]
