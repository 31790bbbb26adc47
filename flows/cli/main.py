"""``impactgate``: the command group. Each command lives in its own module."""

from __future__ import annotations

from typing import Any

import click

from flows.cli import (
    approve,
    ci,
    collect,
    golden,
    ingest,
    judge,
    labels,
    plan,
    promote,
    report,
    rollback,
    run,
    schema,
    scorecard,
    serve,
    status,
    validate,
)
from flows.cli._output import err_console

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Prints user errors as ``file: field: message`` lines, without a traceback, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        from evals.errors import UserError

        try:
            return super().invoke(ctx)
        except UserError as exc:
            for problem in exc.problems:
                err_console.print(f"[red]error[/red] {problem}", soft_wrap=True, markup=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="impactgate")
@click.option(
    "--ledger",
    "ledger_url",
    envvar="IMPACTGATE_LEDGER_URL",
    metavar="URL",
    help="Release ledger database shared by every worker, e.g. "
    "postgresql+psycopg://user:password@host:5432/impactgate (default: "
    "<results>/ledger.sqlite). Also $IMPACTGATE_LEDGER_URL.",
)
def cli(ledger_url: str | None) -> None:
    """Evaluate AI agents against their Agent Impact Contracts and gate their autonomy."""
    if ledger_url:
        import os

        # Every ledger this process (and the flows it runs) opens reads it from here.
        os.environ["IMPACTGATE_LEDGER_URL"] = ledger_url


cli.add_command(run.run)
cli.add_command(status.status)
cli.add_command(validate.validate)
cli.add_command(schema.schema)
cli.add_command(judge.judge)
cli.add_command(report.report)
cli.add_command(plan.plan)
cli.add_command(ci.ci)
cli.add_command(promote.promote)
cli.add_command(approve.approve)
cli.add_command(approve.reject)
cli.add_command(rollback.rollback)
cli.add_command(serve.serve)
cli.add_command(ingest.ingest)
cli.add_command(collect.collect)
cli.add_command(scorecard.scorecard)
cli.add_command(labels.labels)
cli.add_command(golden.golden)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
