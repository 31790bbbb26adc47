"""``impactgate judge``: run a judge over labelled rows, so anyone can benchmark a tier."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals.contract import GroundingConfig
from evals.errors import Problem, UserError, display_path
from evals.judges import build_judge
from evals.policy import PolicyEngine, Subject, load_rule_pack, normalise_tool_calls
from flows.cli._output import err_console
from flows.cli._progress import progress

__all__ = ["judge"]

_BATCH = 64


class _GroundingRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    question: str = ""
    context: str | list[str]
    answer: str = Field(min_length=0)


class _PolicyRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str
    input: str = ""
    contexts: str | list[str] = Field(default_factory=list)
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)


def _read_rows(
    path: Path,
    row_model: type[BaseModel] = _GroundingRow,
    expected: str = "question, context, answer",
    binary_label: bool = False,
) -> list[dict[str, Any]]:
    shown = display_path(path)
    if path.is_dir():
        raise UserError.single(shown, "--input", "is a folder; pass a JSONL file")
    if not path.is_file():
        raise UserError.single(shown, "--input", "file not found")
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is fine
    except UnicodeDecodeError as exc:
        raise UserError.single(
            shown, f"byte {exc.start}", "is not UTF-8 text; save the file as UTF-8"
        ) from exc
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                problems.append(
                    Problem(
                        shown,
                        f"line {line_no}",
                        f"is a JSON {type(data).__name__}; each line must be an object "
                        f"with {expected}",
                    )
                )
                continue
            row_model.model_validate(data)
            if binary_label and data.get("label") not in (0, 1, True, False, None):
                problems.append(
                    Problem(
                        shown,
                        f"line {line_no}: field 'label'",
                        f"must be 0 or 1 (or true/false), got {data['label']!r}",
                    )
                )
                continue
        except json.JSONDecodeError as exc:
            problems.append(Problem(shown, f"line {line_no}", f"invalid JSON: {exc.msg}"))
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                problems.append(
                    Problem(
                        shown,
                        f"line {line_no}: field '{field}'",
                        "required" if error["type"] == "missing" else error["msg"],
                    )
                )
        else:
            rows.append(data)
        if len(problems) >= 20:
            break
    if problems:
        raise UserError(problems)
    if not rows:
        raise UserError.single(shown, "", f"no rows; expected JSON lines with {expected}")
    return rows


def _check_output(input_path: Path, output_path: Path) -> None:
    """Refuse an output path that cannot be written, before any scoring is done."""
    shown = display_path(output_path)
    if output_path.is_dir():
        raise UserError.single(shown, "--output", "is a folder; name a file such as out.jsonl")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise UserError.single(
            shown, "--output", "is the --input file; write the scores to another file"
        )
    for parent in [output_path.parent, *output_path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise UserError.single(
                    shown, "--output", f"{display_path(parent)} is a file, not a folder"
                )
            if not os.access(parent, os.W_OK):
                raise UserError.single(
                    shown,
                    "--output",
                    f"cannot write in {display_path(parent)}; choose another path",
                )
            break


def _write_atomically(output_path: Path, lines: Iterator[str]) -> None:
    """Write lines to a temporary file beside ``output_path``, then rename it into place."""
    temporary = output_path.with_name(f".{output_path.name}.{os.getpid()}.tmp")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with temporary.open("w", encoding="utf-8") as out:
            for line in lines:
                out.write(line)
        temporary.replace(output_path)
    finally:
        temporary.unlink(missing_ok=True)


@click.group("judge")
def judge() -> None:
    """Run a judge over labelled rows (benchmarking)."""


@judge.command("grounding")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL rows: question, context (string or list), answer.",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL out: each row plus score, label_pred, claims.",
)
@click.option(
    "--judge",
    "tier",
    type=click.Choice(["offline", "nli", "llm", "ragas"]),
    default="offline",
    show_default=True,
)
@click.option("--model", default=None, help="NLI CrossEncoder id/path, or litellm model id.")
@click.option("--api-base", default=None, help="OpenAI-compatible base URL (llm, ragas).")
@click.option(
    "--api-key-env", default=None, help="Environment variable with the API key (llm, ragas)."
)
@click.option(
    "--threshold",
    type=float,
    default=None,
    help="Support threshold (default: the tier's calibrated one).",
)
def grounding(
    input_path: Path,
    output_path: Path,
    tier: str,
    model: str | None,
    api_base: str | None,
    api_key_env: str | None,
    threshold: float | None,
) -> None:
    """Score each row's answer against its context.

    `score` is the support probability of the answer's weakest claim; `label_pred` is 1 when
    the answer is unsupported.
    """
    try:
        config = GroundingConfig(
            judge=tier,
            model=model,
            api_base=api_base,
            api_key_env=api_key_env,
            support_threshold=threshold,
        )
    except ValidationError as exc:
        raise UserError.single(
            "command line", "--judge/--model", exc.errors()[0]["msg"].removeprefix("Value error, ")
        ) from None
    _check_output(input_path, output_path)
    rows = _read_rows(input_path)
    grounding_judge = build_judge(config)
    temporary = output_path.with_name(f".{output_path.name}.{os.getpid()}.tmp")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            temporary.open("w", encoding="utf-8") as out,
            progress(len(rows), f"judging with {tier}") as advance,
        ):
            for start in range(0, len(rows), _BATCH):
                batch = rows[start : start + _BATCH]
                items = [
                    (
                        str(r["answer"]),
                        [r["context"]] if isinstance(r["context"], str) else list(r["context"]),
                    )
                    for r in batch
                ]
                for row, verdict in zip(batch, grounding_judge.judge(items), strict=True):
                    result = dict(row)
                    if verdict.error:
                        result.update(score=None, label_pred=None, claims=[], error=verdict.error)
                    else:
                        result.update(
                            score=round(verdict.support_score, 6),
                            label_pred=int(bool(verdict.unsupported)),
                            claims=verdict.to_dict()["claims"],
                        )
                    result["judge"] = verdict.judge or tier
                    out.write(json.dumps(result, default=str) + "\n")
                advance(len(batch))
        temporary.replace(output_path)
    finally:
        temporary.unlink(missing_ok=True)


def _subject(row: dict[str, Any]) -> Subject:
    contexts = row.get("contexts") or []
    return Subject(
        output=str(row["text"]),
        input=str(row.get("input") or ""),
        contexts=(contexts,) if isinstance(contexts, str) else tuple(str(c) for c in contexts),
        tool_calls=normalise_tool_calls(row.get("tool_calls") or []),
    )


_BUNDLED_PACKS = Path(__file__).resolve().parents[2] / "policies" / "rules"


def _default_pack() -> Path:
    """The project's own policies/rules/default.yaml when run from it, else the bundled one."""
    local = Path("policies/rules/default.yaml")
    return local if local.is_file() else _BUNDLED_PACKS / "default.yaml"


def _pack_path(given: Path) -> Path:
    """A rule pack file: the path as given, or a bundled pack by name ("pii")."""
    if given.is_file():
        return given
    bundled = _BUNDLED_PACKS / f"{given.stem if given.suffix == '.yaml' else given.name}.yaml"
    if given.parent == Path(".") and bundled.is_file():
        return bundled
    names = sorted(p.stem for p in _BUNDLED_PACKS.glob("*.yaml"))
    raise UserError.single(
        display_path(given),
        "--rules",
        f"no such rule pack file; pass a path or a bundled pack name ({', '.join(names)})",
    )


@judge.command("policy")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL rows: text, and optionally input, contexts, tool_calls, label.",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL out: each row plus violation (0/1), score, rules, violations (masked).",
)
@click.option(
    "--rules",
    "packs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Rule pack file or bundled pack name, e.g. pii (repeatable). "
    "Default: policies/rules/default.yaml here, else the bundled one.",
)
@click.option("--allow", multiple=True, help="A value the text may contain (repeatable).")
@click.option(
    "--scopes",
    type=click.Choice(["all", "declared"]),
    default=None,
    help="all: every text rule reads `text`, whatever its scope (benchmarking loose texts). "
    "declared: `text` is the answer; rules scoped to the input or contexts read those fields. "
    "Default: declared when any row has input, contexts or tool_calls, else all.",
)
@click.option("--tool", "tools", multiple=True, help="A tool the agent may call (repeatable).")
@click.option("--max-tool-depth", type=click.IntRange(min=0), help="Deepest delegation level.")
@click.option("--max-tool-calls", type=click.IntRange(min=1), help="Most tool calls per row.")
@click.option("--canary", "canaries", multiple=True, help="A canary string (repeatable).")
@click.option("--disable", multiple=True, help="A rule id to leave out (repeatable).")
@click.option(
    "--system-prompt",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File with the system prompt, for leakage.yaml.",
)
def policy(
    input_path: Path,
    output_path: Path,
    packs: tuple[Path, ...],
    allow: tuple[str, ...],
    scopes: str | None,
    tools: tuple[str, ...],
    max_tool_depth: int | None,
    max_tool_calls: int | None,
    canaries: tuple[str, ...],
    disable: tuple[str, ...],
    system_prompt: Path | None,
) -> None:
    """Apply rule packs to each row and write what they flag.

    `violation` is 1 when any rule fires; `score` is the strongest finding (1.0 for a rule
    match, the classifier's probability or the topic similarity otherwise); `rules` lists the
    rule ids; `violations` holds the findings, their spans masked. The rows' own fields are
    copied as given. With a `label` column (1 = violation), precision and recall are printed.
    `--rules` takes a file or the name of a bundled pack (default, pii, injection, leakage,
    trajectory).
    """
    try:
        engine = PolicyEngine(
            [load_rule_pack(_pack_path(p)) for p in packs or (_default_pack(),)],
            allow=allow,
            tools=tools,
            max_tool_depth=max_tool_depth,
            max_tool_calls=max_tool_calls,
            canaries=canaries,
            disable=disable,
            system_prompt=system_prompt.read_text(encoding="utf-8") if system_prompt else None,
            source="impactgate judge policy",
        )
    except UserError as exc:
        raise UserError(
            [
                *exc.problems,
                Problem(
                    "impactgate judge policy",
                    "options",
                    "here the settings a contract would give come from --tool, "
                    "--max-tool-depth, --max-tool-calls, --canary and --system-prompt; "
                    "--disable RULE leaves out a rule you cannot configure",
                ),
            ]
        ) from exc
    _check_output(input_path, output_path)
    rows = _read_rows(
        input_path,
        _PolicyRow,
        "text (and optionally input, contexts, tool_calls, label)",
        binary_label=True,
    )
    if scopes is None:
        carries = any(r.get("input") or r.get("contexts") or r.get("tool_calls") for r in rows)
        scopes = "declared" if carries else "all"
        err_console.print(
            f"--scopes {scopes}: "
            + (
                "rows carry input, contexts or tool calls, so each rule reads its own field"
                if carries
                else "every text rule reads `text`"
            )
        )
    counts = {"flagged": 0, "tp": 0, "fp": 0, "fn": 0, "labelled": 0}
    by_rule: dict[str, int] = {}

    def lines() -> Iterator[str]:
        with progress(len(rows), "applying rule packs") as advance:
            for start in range(0, len(rows), _BATCH):
                batch = rows[start : start + _BATCH]
                found = engine.check_many([_subject(r) for r in batch], all_scopes=scopes == "all")
                for row, violations in zip(batch, found, strict=True):
                    flagged = int(bool(violations))
                    rules = sorted({v.rule for v in violations})
                    counts["flagged"] += flagged
                    for rule in rules:
                        by_rule[rule] = by_rule.get(rule, 0) + 1
                    if row.get("label") in (0, 1, True, False):
                        label = int(row["label"])
                        counts["labelled"] += 1
                        counts["tp"] += flagged and label
                        counts["fp"] += flagged and not label
                        counts["fn"] += label and not flagged
                    result = dict(row)
                    result.update(
                        violation=flagged,
                        score=max((v.confidence for v in violations), default=0.0),
                        rules=rules,
                        violations=[asdict(v) for v in violations],
                    )
                    yield json.dumps(result, default=str, ensure_ascii=False) + "\n"
                advance(len(batch))

    _write_atomically(output_path, lines())
    summary = f"{len(rows)} rows, {counts['flagged']} flagged"
    if by_rule:
        summary += " (" + ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items())) + ")"
    if counts["labelled"]:
        tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        summary += f"; on {counts['labelled']} labelled rows precision {precision:.3f}, recall {recall:.3f}"
    err_console.print(summary, soft_wrap=True)
