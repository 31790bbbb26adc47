"""``impactgate ingest``: OpenTelemetry traces and work-item exports into the results store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from flows.cli._output import console, err_console, print_json

if TYPE_CHECKING:
    from evals.telemetry import FileReport, WorkItemMapping

__all__ = ["FORMATS", "ingest"]

FORMATS = ("otlp-json", "otlp-proto", "csv", "jsonl", "parquet")
"""``evals.telemetry.FORMATS``, here so ``--help`` needs no engine (a test keeps them equal)."""


def _mapping(path: Path | None) -> WorkItemMapping | None:
    """The work-item mapping in a YAML or JSON file (its fields: ``WorkItemMapping``)."""
    if path is None:
        return None
    import yaml
    from pydantic import ValidationError

    from evals.errors import Problem, UserError, display_path
    from evals.telemetry import WorkItemMapping

    shown = display_path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError.single(shown, "", f"cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError.single(shown, "", f"not YAML: {exc}") from None
    try:
        return WorkItemMapping.model_validate(data or {})
    except ValidationError as exc:
        raise UserError(
            [
                Problem(
                    shown,
                    ".".join(str(p) for p in e["loc"]),
                    e["msg"].removeprefix("Value error, "),
                )
                for e in exc.errors()
            ]
        ) from None


def _line(report: FileReport) -> str:
    what = "spans" if report.kind == "spans" else "work items"
    if report.status == "already ingested":
        return f"{report.path} ({report.format}): already ingested (same content), skipped"
    if report.status == "failed":
        return (
            f"{report.path} ({report.format}): nothing stored ({report.problem_count:,} problem(s))"
        )
    agents = ", ".join(f"{agent} {n:,}" for agent, n in sorted(report.agents.items()))
    parts = [f"{report.path} ({report.format}): {report.records:,} {what} stored"]
    if agents:
        parts[0] += f" ({agents})"
    if report.rejected:
        parts.append(f"{report.rejected:,} rejected")
    if report.duplicates:
        parts.append(f"{report.duplicates:,} given twice, kept once")
    return "; ".join(parts)


@click.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="The format of every file (default: told from each file's name, then its content).",
)
@click.option("--results", default="results", show_default=True, help="Results root.")
@click.option(
    "--policies",
    default="policies",
    show_default=True,
    help="Folder of contracts: each agent's telemetry is masked with its contract's rule packs.",
)
@click.option(
    "--mapping",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML file naming the work-item export's columns (default: the common names).",
)
@click.option(
    "--work-item-attribute",
    default="impactgate.work_item.id",
    show_default=True,
    help="The span attribute that names the work item a trace worked on.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes decoding OTLP JSON files of 32 MB or more (default: one per core, up to 4).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
def ingest(
    files: tuple[Path, ...],
    fmt: str | None,
    results: str,
    policies: str,
    mapping: Path | None,
    work_item_attribute: str,
    workers: int | None,
    as_json: bool,
) -> None:
    """Store OpenTelemetry traces and work-item exports in the results root.

    FILES are OTLP JSON (as the Collector's file exporter writes it) or OTLP protobuf
    traces, and CSV, JSON-lines or Parquet exports of work items. Each file is stored once
    (by its content); prompts, outputs, documents and tool arguments are masked first. Bad
    records are listed with their line and field and left out, the others stored; the exit
    code is 2 if there were any.
    """
    from evals.telemetry import ingest as run_ingest

    report = run_ingest(
        list(files),
        results,
        policies=policies if Path(policies).is_dir() else None,
        format=fmt,  # type: ignore[arg-type]
        mapping=_mapping(mapping),
        work_item_attribute=work_item_attribute,
        workers=workers or min(os.cpu_count() or 1, 4),
    )
    if as_json:
        print_json(report.to_dict())
    else:
        for item in report.files:
            console.print(_line(item), soft_wrap=True, markup=False)
    if not as_json:
        from rich.markup import escape

        for item in report.files:
            for problem in item.problems:
                err_console.print(f"[red]error[/red] {escape(str(problem))}", soft_wrap=True)
            hidden = item.problem_count - len(item.problems)
            if hidden > 0:
                err_console.print(f"{item.path}: … and {hidden} more", soft_wrap=True, markup=False)
        for warning in report.warnings:
            err_console.print(f"[yellow]warning[/yellow] {escape(str(warning))}", soft_wrap=True)
    if not report.ok:
        raise SystemExit(2)
