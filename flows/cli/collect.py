"""``impactgate collect``: an OTLP/HTTP receiver writing the traces it gets to the results root."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from flows.cli._output import console, err_console

__all__ = ["collect"]


@click.command("collect")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=4318,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free one).",
)
@click.option("--results", default="results", show_default=True, help="Results root.")
@click.option(
    "--policies",
    default="policies",
    show_default=True,
    help="Folder of contracts: each agent's telemetry is masked with its contract's rule packs.",
)
@click.option(
    "--work-item-attribute",
    default="impactgate.work_item.id",
    show_default=True,
    help="The span attribute that names the work item a trace worked on.",
)
@click.option(
    "--max-body-mb",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0.001),
    help="Largest request body accepted (413 above).",
)
@click.option(
    "--flush-spans",
    default=5000,
    show_default=True,
    type=click.IntRange(1),
    help="Write when this many spans wait.",
)
@click.option(
    "--flush-seconds",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.05),
    help="Write at least this often.",
)
def collect(
    host: str,
    port: int,
    results: str,
    policies: str,
    work_item_attribute: str,
    max_body_mb: float,
    flush_spans: int,
    flush_seconds: float,
) -> None:
    """Receive OpenTelemetry traces over OTLP/HTTP (POST /v1/traces) until stopped.

    Point an exporter at http://HOST:PORT/v1/traces (protobuf or JSON, gzip allowed). Spans
    are masked with their agent's contract and written in batches; Ctrl-C or SIGTERM writes
    what is waiting and stops.
    """
    from evals.errors import UserError
    from evals.telemetry import OtlpReceiver

    try:
        receiver = OtlpReceiver(
            results,
            host=host,
            port=port,
            policies=policies if Path(policies).is_dir() else None,
            work_item_attribute=work_item_attribute,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            flush_spans=flush_spans,
            flush_seconds=flush_seconds,
        )
    except OSError as exc:
        raise UserError.single(
            f"{host}:{port}", "--port", f"cannot listen there ({exc.strerror}); pass another --port"
        ) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    receiver.start()
    console.print(
        f"listening on {receiver.endpoint}; writing to {results} (Ctrl-C or SIGTERM to stop)",
        soft_wrap=True,
        markup=False,
    )
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
        signal.signal(signal.SIGTERM, previous)
    stats = receiver.stats
    err_console.print(
        f"stopped: {stats.requests:,} request(s), {stats.spans_written:,} span(s) written in "
        f"{stats.batches:,} batch(es), {stats.spans_rejected:,} rejected, "
        f"{stats.bad_requests + stats.too_large + stats.unsupported:,} request(s) refused",
        soft_wrap=True,
        markup=False,
    )
