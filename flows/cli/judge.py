"""``impactgate judge``: run a judge over labelled rows, so anyone can benchmark a tier."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from evals.contract import GroundingConfig
from evals.errors import Problem, UserError, display_path
from evals.judges import build_judge
from flows.cli._progress import progress

__all__ = ["judge"]

_BATCH = 64


class _GroundingRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    question: str = ""
    context: str | list[str]
    answer: str = Field(min_length=0)


def _read_rows(path: Path) -> list[dict[str, Any]]:
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
                _GroundingRow.model_validate(data)
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
        raise UserError.single(
            shown, "", "no rows; expected JSON lines with question, context, answer"
        )
    return rows


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
