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
) -> list[dict[str, Any]]:
    shown = display_path(path)
    if not path.is_file():
        raise UserError.single(shown, "", "file not found")
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                row_model.model_validate(data)
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
    help="Rule pack file (repeatable). Default: policies/rules/default.yaml.",
)
@click.option("--allow", multiple=True, help="A value the text may contain (repeatable).")
@click.option(
    "--scopes",
    type=click.Choice(["all", "declared"]),
    default="all",
    show_default=True,
    help="all: every text rule reads `text`, whatever its scope (benchmarking loose texts). "
    "declared: `text` is the answer; rules scoped to the input or contexts read those fields.",
)
def policy(
    input_path: Path,
    output_path: Path,
    packs: tuple[Path, ...],
    allow: tuple[str, ...],
    scopes: str,
) -> None:
    """Apply rule packs to each row and write what they flag.

    `violation` is 1 when any rule fires; `score` is the strongest finding (1.0 for a rule
    match, the classifier's probability or the topic similarity otherwise); `rules` lists the
    rule ids. Spans are masked: the output file never repeats the personal data it caught.
    With a `label` column (1 = violation), precision and recall are printed.
    """
    engine = PolicyEngine(
        [load_rule_pack(p) for p in packs or (Path("policies/rules/default.yaml"),)],
        allow=allow,
    )
    rows = _read_rows(input_path, _PolicyRow, "text (and optionally input, contexts, tool_calls)")
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
