"""What is generated from the models: the JSON Schemas and the reference parts of the docs.

The JSON Schemas are what editors use for contracts and rule packs; the reference parts of the
docs: a Markdown file under ``docs/`` holds hand-written prose and, between
``<!-- begin generated: NAME ... -->`` and ``<!-- end generated: NAME -->``, a part this
`impactgate schema` writes from the models' field docstrings, types, defaults and bounds. A reference that
is generated cannot drift from the code; ``--check`` fails when a committed file is stale.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, Discriminator, Tag
from pydantic.fields import FieldInfo

from evals.contract import Contract
from evals.errors import Problem, UserError, did_you_mean, display_path
from evals.metrics import METRICS
from evals.policy import RULE_KINDS, Rule, RulePack, TextRule

__all__ = [
    "REGIONS",
    "contract_reference",
    "generated",
    "reference_pages",
    "rule_kinds_table",
    "schemas",
]


def schemas(policies: Path) -> dict[Path, str]:
    """Schema file path → its JSON text, generated from the pydantic models."""

    def render(model: Any, title: str) -> str:
        data = model.model_json_schema()
        data["title"] = title
        data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    return {
        policies / "contract.schema.json": render(Contract, "impactgate Agent Impact Contract"),
        policies / "rules" / "rulepack.schema.json": render(
            RulePack, "impactgate policy rule pack"
        ),
    }


# --- Markdown from the models -----------------------------------------------------------------


def _prose(doc: str | None) -> str:
    """A docstring as Markdown: RST double-backquoted code as code spans, paragraphs kept."""
    if not doc:
        return ""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(doc))
    return "\n\n".join(" ".join(p.split()) for p in paragraphs).replace("``", "`")


def _cell(text: str) -> str:
    """Text that fits one table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _strip(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under ``Annotated``, and the metadata it carried."""
    metadata: list[Any] = []
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        metadata += more
    return annotation, metadata


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union other than ``None`` (the type itself if it is not one)."""
    if get_origin(annotation) in (Union, UnionType):
        return [a for a in get_args(annotation) if a is not NoneType]
    return [annotation]


def _bounds(metadata: Sequence[Any], of: Any) -> str:
    """Constraints in words: ``≥ 0, ≤ 1``, ``1 to 2 items``, ``matches `^https?://```."""
    parts: list[str] = []
    lengths: dict[str, int] = {}
    for m in metadata:
        if isinstance(m, FieldInfo):
            inner = _bounds(m.metadata, of)
            parts += [inner] if inner else []
        elif isinstance(m, annotated_types.Ge):
            parts.append(f"≥ {m.ge}")
        elif isinstance(m, annotated_types.Gt):
            parts.append(f"> {m.gt}")
        elif isinstance(m, annotated_types.Le):
            parts.append(f"≤ {m.le}")
        elif isinstance(m, annotated_types.Lt):
            parts.append(f"< {m.lt}")
        elif isinstance(m, annotated_types.MinLen):
            lengths["min"] = m.min_length
        elif isinstance(m, annotated_types.MaxLen):
            lengths["max"] = m.max_length
        elif getattr(m, "pattern", None):
            parts.append(f"matches `{m.pattern}`")
    unit = "characters" if of is str else "items"
    low, high = lengths.get("min"), lengths.get("max")
    if low is not None and high is not None:
        parts.insert(0, f"{low} to {high} {unit}")
    elif low == 1:
        parts.insert(0, "not empty")
    elif low is not None:
        parts.insert(0, f"at least {low} {unit}")
    elif high is not None:
        parts.insert(0, f"at most {high} {unit}")
    return ", ".join(parts)


_NAMES = {str: "text", int: "integer", float: "number", bool: "boolean"}


def _link(model: type[BaseModel]) -> str:
    """A link to ``model``'s section: its block's (``#evals``) or its own (``#retryconfig``)."""
    blocks = {s.model: s.block for s in _sections(Contract)[1:] if s.paths == [s.block]}
    return f"[{model.__name__}](#{blocks.get(model, model.__name__.lower())})"


def _type(annotation: Any) -> str:
    """A field's type in words, with links to the sections of the models it holds."""
    base, metadata = _strip(annotation)
    options = _members(base)
    if len(options) > 1:
        if len(options) > 4:
            return f"one of {len(options)} kinds, by `kind`"
        return " or ".join(_type(o) for o in options)
    base = options[0]
    origin, args = get_origin(base), get_args(base)
    if origin is Literal:
        text = " | ".join(f"`{v}`" for v in args)
    elif origin is list:
        text = f"list of {_type(args[0])}"
    elif origin is dict:
        text = "mapping" if args[1] is Any else f"map of {_type(args[0])} → {_type(args[1])}"
    elif isinstance(base, type) and issubclass(base, BaseModel):
        text = _link(base)
    else:
        text = _NAMES.get(base, "any")
    bounds = _bounds(metadata, base)
    return f"{text} ({bounds})" if bounds else text


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "—"
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{json.dumps(value)}`"


def _fields_table(
    model: type[BaseModel], names: Sequence[str] | None = None, first: str | None = None
) -> str:
    """A table of ``model``'s fields (``names``, default all), ``first`` on top."""
    names = list(names if names is not None else model.model_fields)
    if first in names:
        names = [first, *(n for n in names if n != first)]
    rows = []
    for name in names:
        info = model.model_fields[name]
        base = _strip(info.annotation)[0]
        rows.append(
            [
                f"`{name}`",
                _type(info.annotation),
                _default(info),
                _bounds(info.metadata, _members(base)[0]),
                _prose(info.description),
            ]
        )
    return _table(["field", "type", "default", "bounds", "description"], rows)


@dataclass
class _Section:
    """One model of the contract, where it appears, and the top-level block it belongs to."""

    model: type[BaseModel]
    block: str
    paths: list[str] = field(default_factory=list)
    tag: str | None = None
    """``kind: litellm`` when the model is one member of a union."""


def _tag(model: type[BaseModel], metadata: Sequence[Any], by: str | None) -> str | None:
    """``kind: value`` for a union member picked by a field or a :class:`Tag`."""
    tags = [str(m.tag) for m in metadata if isinstance(m, Tag)]
    if by is not None:
        values = get_args(model.model_fields[by].annotation)
        return f"{by}: {values[0]}" if values else None
    for name, info in model.model_fields.items():
        if tags and get_origin(info.annotation) is Literal and tags[0] in get_args(info.annotation):
            return f"{name}: {tags[0]}"
    return None


def _children(
    annotation: Any, path: str, discriminator: Any = None
) -> Iterator[tuple[type[BaseModel], str, str | None]]:
    """The models a field holds, each with its path and, for union members, its tag."""
    base, metadata = _strip(annotation)
    for m in metadata:
        if isinstance(m, Discriminator | FieldInfo):
            discriminator = m.discriminator if isinstance(m, FieldInfo) else m
    options = _members(base)
    by = discriminator if isinstance(discriminator, str) else None
    for option in options:
        inner, inner_metadata = _strip(option)
        origin = get_origin(inner)
        if origin is list:
            yield from _children(get_args(inner)[0], f"{path}[]")
        elif origin is dict:
            yield from _children(get_args(inner)[1], f"{path}.*")
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            tag = _tag(inner, inner_metadata, by) if len(options) > 1 else None
            yield inner, path, tag


@functools.cache
def _sections(root: type[BaseModel]) -> tuple[_Section, ...]:
    """Every model under ``root``, in the order a reader meets them, each once."""
    found: dict[type[BaseModel], _Section] = {}

    def visit(model: type[BaseModel], path: str, block: str, tag: str | None) -> None:
        if model in found:
            if path not in found[model].paths:
                found[model].paths.append(path)
            return
        found[model] = _Section(model, block, [path], tag)
        for name, info in model.model_fields.items():
            child_path = f"{path}.{name}" if path else name
            for child, where, child_tag in _children(
                info.annotation, child_path, info.discriminator
            ):
                visit(child, where, block or name, child_tag)

    visit(root, "", "", None)
    return tuple(found.values())


def _model_section(section: _Section) -> list[str]:
    """A model's heading, where it appears, its docstring and its fields."""
    model = section.model
    out = [] if section.paths == [section.block] else [f"### {model.__name__}", ""]
    if out:
        where = ", ".join(f"`{p}`" for p in section.paths)
        out += [f"At {where}" + (f" with `{section.tag}`." if section.tag else "."), ""]
    doc = _prose(model.__doc__)
    out += [doc, ""] if doc else []
    first = section.tag.partition(":")[0] if section.tag else None
    return [*out, _fields_table(model, first=first), ""]


def _metrics_table() -> str:
    rows = [
        [f"`{m.name}`", m.suite or "(every run)", m.better, m.unit, m.description]
        for m in METRICS.values()
    ]
    return _table(["metric", "suite", "better", "unit", "meaning"], rows)


def _own_fields(kind: type[Rule]) -> list[str]:
    shared = TextRule.model_fields if issubclass(kind, TextRule) else Rule.model_fields
    return [name for name in kind.model_fields if name not in shared]


def _shown(value: str) -> str:
    """A default as the kinds table shows it: bare, or nothing when it is empty or unset."""
    return "" if value in {"required", "—", "`[]`", "`{}`"} else value.strip("`").strip('"')


def rule_kinds_table() -> str:
    """Markdown table of every rule kind: what it detects and the fields that configure it."""
    rows = []
    for name, kind in RULE_KINDS.items():
        fields = []
        for f in _own_fields(kind):
            default = _shown(_default(kind.model_fields[f]))
            fields.append(f"`{f}`" + (f" ({default})" if default else ""))
        rows.append([f"`{name}`", _prose(kind.__doc__), ", ".join(fields) or "—"])
    return _table(["kind", "detects", "fields"], rows)


def contract_reference() -> str:
    """Markdown reference of every contract and rule-pack field, from the models."""
    root, *rest = _sections(Contract)
    out = ["## Top level", "", _prose(root.model.__doc__), "", _fields_table(Contract), ""]
    for block in dict.fromkeys(s.block for s in rest):
        out += [f"## `{block}`", ""]
        for section in (s for s in rest if s.block == block):
            out += _model_section(section)
    out += [
        "## Gate metrics",
        "",
        "The names a gate, a rollback, a tolerance or a comparison may use: a closed set, and an "
        "unknown name is an error with a suggestion.",
        "",
        _metrics_table(),
        "",
        "## Rule packs",
        "",
        "`policies/rules/*.yaml`, validated against `policies/rules/rulepack.schema.json`; "
        "[policy.md](policy.md) explains how rules read texts and tool calls.",
        "",
        "### RulePack",
        "",
        _prose(RulePack.__doc__),
        "",
        _fields_table(RulePack),
        "",
        "### Rule",
        "",
        "Every rule has `kind` (one of the [rule kinds](#rule-kinds)) and these fields; only the "
        "kinds that read text take `scope`, the tool-call kinds do not.",
        "",
        _fields_table(TextRule, [n for n in TextRule.model_fields if n != "kind"]),
        "",
        "### Rule kinds",
        "",
        "A kind takes the fields above and its own; a field of another kind is an error.",
        "",
        rule_kinds_table(),
        "",
    ]
    for name, kind in RULE_KINDS.items():
        own = _own_fields(kind)
        if own:
            out += [f"#### `{name}`", "", _fields_table(kind, own), ""]
    return "\n".join(out)


REGIONS: dict[str, Callable[[], str]] = {
    "contract-reference": contract_reference,
    "rule-kinds": rule_kinds_table,
}
"""Name of a generated region → what renders it."""

_BEGIN = re.compile(r"<!-- begin generated: ([a-z0-9-]+)\b[^\n]*?-->\n")


def _fill(path: Path, text: str) -> str:
    """``text`` with every generated region rendered afresh.

    Raises:
        UserError: a region has an unknown name or no end marker.
    """
    out, position = [], 0
    for begin in _BEGIN.finditer(text):
        name = begin.group(1)
        end = text.find(f"<!-- end generated: {name} -->", begin.end())
        if end < 0:
            problem = f"no end marker '<!-- end generated: {name} -->'"
            raise UserError(Problem(display_path(path), "", problem))
        if name not in REGIONS:
            problem = f"unknown generated region '{name}'{did_you_mean(name, REGIONS)}"
            raise UserError(Problem(display_path(path), "", problem))
        out += [text[position : begin.end()], "\n", REGIONS[name]().strip(), "\n\n"]
        position = end
    return "".join([*out, text[position:]])


def reference_pages(docs: Path) -> dict[Path, str]:
    """Markdown file under ``docs`` with generated regions → its text with them current."""
    pages = {}
    for path in sorted(docs.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if _BEGIN.search(text):
            pages[path] = _fill(path, text)
    return pages


def generated(policies: Path, docs: Path) -> dict[Path, str]:
    """Every file ``impactgate schema`` writes → its text: the schemas and the reference pages."""
    return {**schemas(policies), **reference_pages(docs)}
