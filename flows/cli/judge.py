"""``impactgate judge``: run a judge over labelled rows, so anyone can benchmark a tier.

The commands parse options and print; reading, judging and summarising rows is the engine's
(``evals.judges.judge_grounding_rows``, ``evals.policy.check_policy_rows``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from evals.vocab import JUDGE_TIERS
from flows.cli._output import err_console

if TYPE_CHECKING:
    from evals.contract import GroundingConfig
    from evals.judges import GroundingJudge
    from evals.policy import CheckedRow


__all__ = ["judge"]


def _check_output(input_path: Path, output_path: Path) -> None:
    """Refuse an output path that cannot be written, before any scoring is done."""
    from evals.errors import UserError, display_path

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
    type=click.Choice(JUDGE_TIERS),
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
@click.option(
    "--calibrate",
    "labelled_path",
    type=click.Path(path_type=Path),
    default=None,
    help="JSONL rows like --input, each with label (1 = unsupported): fit the threshold on "
    "them, then judge --input at it.",
)
@click.option(
    "--objective",
    type=click.Choice(["balanced", "false_alarm_budget"]),
    default="balanced",
    show_default=True,
    help="With --calibrate: maximise balanced accuracy, or catch the most within --budget.",
)
@click.option(
    "--budget",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="With --objective false_alarm_budget: the largest share of supported answers to flag.",
)
def grounding(
    input_path: Path,
    output_path: Path,
    tier: str,
    model: str | None,
    api_base: str | None,
    api_key_env: str | None,
    threshold: float | None,
    labelled_path: Path | None,
    objective: str,
    budget: float | None,
) -> None:
    """Score each row's answer against its context.

    `score` is the support probability of the answer's weakest claim; `label_pred` is 1 when
    the answer is unsupported. With `--calibrate`, the threshold is fitted on the labelled rows
    first (printed with its cross-validated balanced accuracy) and every output row records it
    as `threshold`.
    """
    from pydantic import ValidationError

    from evals._io import atomic_open
    from evals.contract import GroundingConfig
    from evals.errors import UserError
    from evals.judges import build_judge, judge_grounding_rows, read_grounding_rows
    from flows.cli._progress import progress

    _check_calibration_options(threshold, labelled_path, objective, budget)

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
    rows = read_grounding_rows(input_path, field="--input")
    grounding_judge = build_judge(config)
    calibrated = None
    if labelled_path is not None:
        calibrated = _calibrate(grounding_judge, config, labelled_path, objective, budget)
    with (
        atomic_open(output_path) as out,
        progress(len(rows), f"judging with {tier}") as advance,
    ):
        for judged in judge_grounding_rows(grounding_judge, rows, on_batch=advance):
            out.write(judged.to_json(calibrated) + "\n")


def _check_calibration_options(
    threshold: float | None, labelled_path: Path | None, objective: str, budget: float | None
) -> None:
    from evals.errors import UserError

    if labelled_path is not None and threshold is not None:
        raise UserError.single(
            "command line",
            "--threshold/--calibrate",
            "give one: --calibrate fits the threshold on your labels",
        )
    if labelled_path is None and (objective != "balanced" or budget is not None):
        raise UserError.single(
            "command line", "--objective/--budget", "apply only with --calibrate LABELLED.jsonl"
        )
    if objective == "false_alarm_budget" and budget is None:
        raise UserError.single(
            "command line",
            "--budget",
            "--objective false_alarm_budget needs --budget, e.g. 0.1 to flag at most 10% of "
            "supported answers",
        )
    if objective == "balanced" and budget is not None:
        raise UserError.single(
            "command line", "--budget", "applies to --objective false_alarm_budget only"
        )


def _calibrate(
    grounding_judge: GroundingJudge,
    config: GroundingConfig,
    labelled_path: Path,
    objective: str,
    budget: float | None,
) -> float:
    """Fit the threshold on the labelled rows, print it, and return it."""
    import hashlib

    from evals.errors import display_path
    from evals.judges import (
        calibrate_on_rows,
        judge_fingerprint,
        judge_grounding_rows,
        read_labelled_grounding_rows,
    )
    from flows.cli._progress import progress

    labelled = read_labelled_grounding_rows(labelled_path, field="--calibrate")
    with progress(len(labelled), "judging the labelled rows") as advance:
        judged = list(judge_grounding_rows(grounding_judge, labelled, on_batch=advance))
    calibration = calibrate_on_rows(
        judged,
        objective="false_alarm_budget" if objective == "false_alarm_budget" else "balanced",
        budget=budget,
        labels_hash=hashlib.sha256(labelled_path.read_bytes()).hexdigest()[:16],
        judge_fingerprint=judge_fingerprint(config),
        source=display_path(labelled_path),
    )
    cv = calibration.cross_validated
    err_console.print(
        f"calibrated on {display_path(labelled_path)}: support threshold "
        f"{calibration.threshold:.4f}; cross-validated balanced accuracy "
        f"{cv.balanced_accuracy}, recall {cv.recall}, false alarms {cv.false_alarm_rate} "
        f"({cv.confidence:.0%} intervals, {calibration.n} labels: {calibration.positives} "
        f"unsupported, {calibration.negatives} supported)",
        soft_wrap=True,
    )
    for note in calibration.notes:
        err_console.print(note, soft_wrap=True)
    return calibration.threshold


_BUNDLED_PACKS = Path(__file__).resolve().parents[2] / "policies" / "rules"


def _default_pack() -> Path:
    """The project's own policies/rules/default.yaml when run from it, else the bundled one."""
    local = Path("policies/rules/default.yaml")
    return local if local.is_file() else _BUNDLED_PACKS / "default.yaml"


def _pack_path(given: Path) -> Path:
    """A rule pack file: the path as given, or a bundled pack by name ("pii")."""
    from evals.errors import UserError, display_path

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
    from evals._io import atomic_open
    from evals.errors import Problem, UserError
    from evals.policy import (
        PolicyEngine,
        PolicyRowsSummary,
        check_policy_rows,
        default_scopes,
        load_rule_pack,
        read_policy_rows,
    )
    from flows.cli._progress import progress

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
    rows = read_policy_rows(input_path, field="--input")
    if scopes is None:
        scopes = default_scopes(rows)
        err_console.print(
            f"--scopes {scopes}: "
            + (
                "rows carry input, contexts or tool calls, so each rule reads its own field"
                if scopes == "declared"
                else "every text rule reads `text`"
            )
        )
    checked: list[CheckedRow] = []
    with atomic_open(output_path) as out, progress(len(rows), "applying rule packs") as advance:
        for row in check_policy_rows(engine, rows, all_scopes=scopes == "all", on_batch=advance):
            out.write(row.to_json() + "\n")
            checked.append(row)
    err_console.print(PolicyRowsSummary.of(checked).describe(), soft_wrap=True)
