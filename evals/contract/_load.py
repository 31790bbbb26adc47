"""Loading contracts from YAML, with errors that point at the file, the line and the field."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Discriminator, Tag, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from evals._io import not_utf8
from evals.contract._model import Contract
from evals.contract._paths import outside_problem
from evals.errors import FieldError, Problem, UserError, did_you_mean, display_path

__all__ = [
    "discover_contracts",
    "line_of",
    "load_contract",
    "load_yaml",
    "load_yaml_model",
    "select_contracts",
    "validation_problems",
]


_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_TYPED = {
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:int": "a whole number",
    _FLOAT: "a number",
    "tag:yaml.org,2002:timestamp": "a date or time",
}
"""Scalar tags whose value must parse: an explicit tag (``!!int abc``) can ask for the
impossible, which PyYAML's constructors meet with a bare ``ValueError`` or ``KeyError``."""


class _AliasFound(Exception):
    """An alias (``*name``) met while composing; aliases are refused, never expanded."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("alias")
        self.mark = mark


class _RefuseAliases:
    """Stops composing at the first alias, before anything is expanded.

    A file of nested aliases (a "billion laughs") composes into a small graph but expands
    into gigabytes; contracts and rule packs have no need for aliases, so none is accepted.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            raise _AliasFound(self.peek_event().start_mark)  # type: ignore[attr-defined]
        node: yaml.Node | None = super().compose_node(parent, index)  # type: ignore[misc]
        return node


class _Loader(_RefuseAliases, yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases: it names what is wrong in a file that fails."""


_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
"""libyaml's problem for a document nested past its 1,000 levels."""

_LOADERS: tuple[type[Any], ...] = (_Loader,)
"""The loaders tried in turn: libyaml's when PyYAML was built with it, then PyYAML's own."""

if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FastLoader(_RefuseAliases, Composer, CParser, SafeConstructor, Resolver):
        """The same loader reading its events from libyaml, six times as fast.

        Only scanning and parsing are libyaml's: composing (so refusing aliases), resolving
        tags and constructing values are PyYAML's own, as in :class:`_Loader`, so both give
        the same data and the same line numbers. A file libyaml will not read is read again
        by :class:`_Loader`, so a problem is worded the same whichever parser met it; one
        nested past libyaml's 1,000 levels is refused at once, as PyYAML's parser would
        refuse it on running out of stack.
        """

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _LOADERS = (_FastLoader, _Loader)


def _dotted(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _field_at(text: str, line: int | None = None) -> str:
    """The dotted field being read at ``line`` (1-based), or where the YAML stops parsing.

    Read from the parser's events, so it works on a file that does not parse as a whole.
    """
    # One frame per open mapping or sequence: [is_mapping, key or index, flag], the flag
    # being "a key comes next" for a mapping and "the item has started" for a sequence.
    frames: list[list[Any]] = []

    def value_done() -> None:
        if frames:
            if frames[-1][0]:
                frames[-1][2] = True
            else:
                frames[-1][1], frames[-1][2] = frames[-1][1] + 1, False

    def value_starts() -> None:
        if frames and not frames[-1][0]:
            frames[-1][2] = True

    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            mark = event.start_mark
            if line is not None and mark is not None and mark.line + 1 > line:
                break
            top = frames[-1] if frames else None
            is_key = top is not None and top[0] and top[2]
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if is_key and top is not None:
                    top[1], top[2] = "?", False
                value_starts()
                mapping = isinstance(event, yaml.MappingStartEvent)
                frames.append([True, None, True] if mapping else [False, 0, False])
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frames.pop()
                value_done()
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)):
                if is_key and top is not None:
                    top[1] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                    top[2] = False
                else:
                    value_starts()
                    value_done()
    except yaml.YAMLError:
        pass

    # At a line, the key on it counts even once its value is read; where parsing failed, a key
    # whose value is complete is behind the failure, not at it.
    def open_at(frame: list[Any]) -> bool:
        if frame[0]:
            return frame[1] is not None and (line is not None or not frame[2])
        return bool(frame[2])

    return _dotted([f[1] for f in frames if open_at(f)])


def _typed_problem(node: yaml.ScalarNode, loader: SafeConstructor) -> str | None:
    """What is wrong with a scalar of a :data:`_TYPED` tag, or ``None`` if it constructs."""
    try:
        value = loader.construct_object(node)
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError):
        tag = node.tag.rsplit(":", 1)[-1]
        return (
            f"'{node.value}' is tagged !!{tag} but is not {_TYPED[node.tag]}; "
            "fix the value or remove the tag"
        )
    if isinstance(value, float) and not math.isfinite(value):
        return f"'{node.value}' is not a finite number; give a real number"
    return None


def _scan(node: yaml.Node, shown: str, loader: SafeConstructor) -> list[Problem]:
    """What YAML reads without complaint but would change what the file means.

    Repeated keys (a later one silently replaces the first), non-finite numbers, and scalars
    whose value does not fit their explicit tag.
    """
    found: list[tuple[int, Problem]] = []
    stack: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(node, ())]
    while stack:
        current, loc = stack.pop()
        if isinstance(current, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in current.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                line = key.start_mark.line + 1
                if isinstance(key, yaml.ScalarNode) and name != "<<":
                    ident = (key.tag, name)
                    if ident in first:
                        found.append(
                            (
                                line,
                                Problem(
                                    f"{shown}:{line}",
                                    _dotted((*loc, name)),
                                    f"duplicate key '{name}' (first at line {first[ident]}, "
                                    f"again at line {line}); YAML would silently keep only the "
                                    "last value, so remove one",
                                ),
                            )
                        )
                    else:
                        first[ident] = line
                stack.append((value, (*loc, name)))
                if key.tag != _STR:  # a typed key (``!!int x: 1``) is checked like a value
                    stack.append((key, (*loc, name)))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(current.value))
        elif isinstance(current, yaml.ScalarNode) and current.tag in _TYPED:
            message = _typed_problem(current, loader)
            if message is not None:
                line = current.start_mark.line + 1
                found.append((line, Problem(f"{shown}:{line}", _dotted(loc), message)))
    return [problem for _, problem in sorted(found, key=lambda item: item[0])]


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file into data and its node tree (for line numbers).

    Aliases are refused (an alias bomb never expands), and so are repeated keys and
    non-finite numbers (``.nan``, ``.inf``): each would quietly change what the file means.

    Raises:
        UserError: the file is missing, is not UTF-8 or not valid YAML, or has an alias, a
            repeated key or a non-finite number; each problem names its line and field.
    """
    shown = display_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError.single(shown, "", "file not found") from None
    except OSError as exc:
        raise UserError.single(shown, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, message = not_utf8(raw, exc)
        field = _field_at(raw.decode("utf-8", errors="replace"), line)
        raise UserError.single(f"{shown}:{line}", field, message) from None
    try:
        return _read(text, shown)
    except _AliasFound as exc:
        line = exc.mark.line + 1
        raise UserError.single(
            f"{shown}:{line}",
            _field_at(text, line),
            "YAML aliases (*name) are not accepted here; write the value out in full",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError.single(where, _field_at(text), f"invalid YAML: {problem}") from None
    except RecursionError:
        raise UserError.single(
            f"{shown}:1", "(top level)", "nested too deeply to be a contract or rule pack"
        ) from None


def _read(text: str, shown: str) -> tuple[Any, yaml.Node | None]:
    """The document's data and node tree, from the first of :data:`_LOADERS` that reads it."""
    for loader_class in _LOADERS:
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            problems = _scan(node, shown, loader) if node is not None else []
            if problems:
                raise UserError(problems)
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as exc:
            if loader_class is _LOADERS[-1]:
                raise
            if getattr(exc, "problem", None) == _LIBYAML_TOO_DEEP:
                # PyYAML's parser would only run out of stack further on (RecursionError).
                raise RecursionError(_LIBYAML_TOO_DEEP) from None
            continue  # PyYAML's own parser reads it next and names the problem
        finally:
            loader.dispose()
        return data, node
    raise AssertionError("unreachable: the last loader returns or raises")


def line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
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


@dataclass(frozen=True)
class _Union:
    """A discriminated union of models, as an error's location meets it."""

    field: str
    """The field whose value picks the member (``kind``)."""
    members: dict[str, type[BaseModel]]
    """Tag → the model it picks, in declaration order."""


def _tag_field(members: dict[str, type[BaseModel]]) -> str:
    """The field every member declares as a literal holding its own tag."""
    first = next(iter(members.values()))
    for name in first.model_fields:
        if all(
            name in m.model_fields and tag in get_args(m.model_fields[name].annotation)
            for tag, m in members.items()
        ):
            return name
    return "kind"


def _union_of(args: Sequence[Any], discriminator: Any) -> _Union:
    by_field = discriminator if isinstance(discriminator, str) else None
    if isinstance(discriminator, Discriminator) and isinstance(discriminator.discriminator, str):
        by_field = discriminator.discriminator
    members: dict[str, type[BaseModel]] = {}
    for arg in args:
        model, tags = arg, []
        if get_origin(arg) is Annotated:
            model, *metadata = get_args(arg)
            tags = [str(m.tag) for m in metadata if isinstance(m, Tag)]
        if not tags and by_field is not None:
            tags = [str(v) for v in get_args(model.model_fields[by_field].annotation)]
        for tag in tags:
            members[tag] = model
    return _Union(by_field or _tag_field(members), members)


def _resolve(annotation: Any, discriminator: Any = None) -> tuple[Any, _Union | None]:
    """The type under ``Annotated`` and ``| None``, and the union when it is discriminated."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation, *metadata = get_args(annotation)
            for m in metadata:
                if isinstance(m, Discriminator):
                    discriminator = m
                elif isinstance(m, FieldInfo) and m.discriminator is not None:
                    discriminator = m.discriminator
            continue
        if get_origin(annotation) in (Union, UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
            if discriminator is not None:
                return annotation, _union_of(args, discriminator)
        return annotation, None


@dataclass(frozen=True)
class _Place:
    """Where an error is, read along the models rather than pydantic's location alone."""

    loc: tuple[int | str, ...]
    """The location as the YAML has it: without the union tags pydantic adds."""
    model: type[BaseModel] | None = None
    """The model that holds the last part of ``loc`` (for an unknown field: the one that
    refused it)."""
    union: _Union | None = None
    """The union ``model`` was picked from."""
    tag: str | None = None
    """The tag that picked ``model``."""
    at: _Union | None = None
    """The union at ``loc`` itself (for errors about the tag)."""


def _place(root: Any, loc: Sequence[int | str]) -> _Place:
    """Follow ``loc`` through the model types from ``root``, dropping the tags of unions."""
    annotation, union = _resolve(root)
    clean: list[int | str] = []
    holder: tuple[type[BaseModel] | None, _Union | None, str | None] = (None, None, None)
    via: tuple[_Union | None, str | None] = (None, None)
    for part in loc:
        if union is not None and isinstance(part, str) and part in union.members:
            via = (union, part)
            annotation, union = _resolve(union.members[part])
            continue
        clean.append(part)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            holder = (annotation, *via)
            field = annotation.model_fields.get(str(part))
            annotation, union = (
                _resolve(field.annotation, field.discriminator) if field else (None, None)
            )
        elif origin in (list, tuple, set, frozenset):
            annotation, union = _resolve(get_args(annotation)[0])
        elif origin is dict:
            annotation, union = _resolve(get_args(annotation)[1])
        else:
            annotation, union = None, None
        via = (None, None)
    return _Place(tuple(clean), *holder, at=union)


def _choices(name: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a close choice, else every choice."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected one of: {', '.join(repr(c) for c in choices)})"


def _what(place: _Place, name: str) -> str:
    """`` (what the field is)``: the first sentence of its docstring, when it has one."""
    field = place.model.model_fields.get(name) if place.model is not None else None
    if field is None or not field.description:
        return ""
    text = " ".join(field.description.replace("``", "'").split())
    summary = re.split(r"(?<=[.;:])\s", text, maxsplit=1)[0].rstrip(".;:")
    if len(summary) > 100:
        return ""
    return f" ({summary[:1].lower() + summary[1:] if not summary[1:2].isupper() else summary})"


def _unknown_field(name: str, place: _Place) -> str:
    model, union = place.model, place.union
    if union is not None and place.tag is not None:
        takers = [t for t, m in union.members.items() if m is not model and name in m.model_fields]
        if takers:
            which = (
                f" ({union.field}s that take it: {', '.join(takers)})" if len(takers) <= 5 else ""
            )
            return f"'{name}' does not apply to {union.field} '{place.tag}'{which}"
    known = list(model.model_fields) if model is not None else []
    return f"unknown field '{name}'" + (did_you_mean(name, known) if known else "")


def _problem(error: ErrorDetails, root: Any) -> list[tuple[tuple[int | str, ...], str]]:
    """The locations (as in the YAML) and messages of one validation error."""
    kind, place = error["type"], _place(root, error["loc"])
    # A bad mapping key is reported at the key itself, not at pydantic's "[key]" beneath it.
    loc = place.loc[:-1] if place.loc[-1:] == ("[key]",) else place.loc
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return [((*loc, *where), message) for where, message in cause.found]
    if kind in {"union_tag_invalid", "union_tag_not_found"} and place.at is not None:
        loc, tags = (*loc, place.at.field), list(place.at.members)
        if kind == "union_tag_not_found":
            return [(loc, f"required field is missing{_choices('', tags)}")]
        tag = str((error.get("ctx") or {}).get("tag", ""))
        return [(loc, f"unknown {place.at.field} '{tag}'{_choices(tag, tags)}")]
    if kind == "missing":
        return [(loc, "required field is missing" + _what(place, str(loc[-1]) if loc else ""))]
    if kind == "extra_forbidden":
        return [(loc, _unknown_field(str(loc[-1]) if loc else "?", place))]
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if kind in {"literal_error", "enum"}:
        got = error.get("input")
        expected = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        close = difflib.get_close_matches(got, expected, n=1) if isinstance(got, str) else []
        hint = f"; did you mean '{close[0]}'?" if close else ""
        message = f"{message} (got {got!r}{hint})"
    return [(loc, message)]


def validation_problems(
    exc: ValidationError, shown: str, node: yaml.Node | None, model: type[BaseModel]
) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into ``file:line: field: message`` problems.

    Args:
        exc: the error of validating the file's data as ``model``.
        shown: the file as the user would type it.
        node: the file's YAML node tree, for line numbers.
        model: the model validated; its fields (and those of its unions' members) place each
            error and feed "did you mean" suggestions.
    """
    problems = []
    for error in exc.errors():
        for loc, message in _problem(error, model):
            line = line_of(node, loc)
            where = f"{shown}:{line}" if line else shown
            problems.append(Problem(where, _dotted(loc), message))
    return problems


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M], shape: str) -> tuple[M, yaml.Node | None]:
    """Parse a YAML file and validate it as ``model``.

    Args:
        path: the file.
        model: the pydantic model of this kind of file.
        shape: what the top level should look like, for the error when it is not a mapping.

    Raises:
        UserError: every problem, each as ``file:line: field: message``.
    """
    shown = display_path(path)
    data, node = load_yaml(path)
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        what = "an empty file" if data is None else f"a {type(data).__name__}"
        raise UserError.single(f"{shown}:{line}", "(top level)", f"expected {shape}, not {what}")
    try:
        return model.model_validate(data), node
    except ValidationError as exc:
        raise UserError(validation_problems(exc, shown, node, model)) from None


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
        path, Contract, "a contract: a YAML mapping with 'agent:' at the top"
    )
    if contract.agent != path.stem:
        raise UserError.single(
            f"{shown}:{line_of(node, ['agent'])}",
            "agent",
            f"'{contract.agent}' does not match the file name '{path.name}'; "
            f"rename the file to '{contract.agent}.yaml' or change 'agent'",
        )
    contract._source = path.resolve()
    contract._root = Path(root).resolve() if root is not None else path.resolve().parent.parent
    problems = []
    hook = ("autonomy", "rollback", "hook", "function")
    contract._lines = {_dotted(hook): line_of(node, hook) or 0}
    for loc, written in contract.path_fields():
        line = line_of(node, loc)
        where, field = (f"{shown}:{line}" if line else shown), _dotted(loc)
        contract._lines[field] = line or 0
        contract._places.setdefault(written, (where, field))
        joined = Path(written) if Path(written).is_absolute() else contract.root / written
        problem = outside_problem(written, joined, contract.root)
        if problem is not None:
            problems.append(Problem(where, field, problem))
    if problems:
        raise UserError(problems)
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
