"""Prefect for local runs: heartbeats off, a generous start-up, and no orphaned server.

Without a configured API, Prefect starts a temporary local server in a subprocess. On a fresh
machine that takes longer than Prefect's default 20 s (migrations), and with heartbeats on
every flow call costs about a second more. Neither is worth paying on a laptop or in CI
(ENV.md). Prefect stops that server when the process exits normally; when the process is
killed (``kill -9``, an OOM kill) the server would live on, so a small watchdog process stops
it once its parent is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["WATCHDOG", "local_prefect"]

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

WATCHDOG = """
import os, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])
while os.getppid() == parent:
    time.sleep(0.5)
    try:
        os.kill(server, 0)
    except OSError:
        sys.exit(0)  # the server is gone already: nothing to watch
try:
    os.kill(server, signal.SIGTERM)
    time.sleep(5)
    os.kill(server, signal.SIGKILL)
except OSError:
    pass
"""
"""Polls whether its parent (the process running flows) still exists; when it does not,
stops the temporary server."""


def _start_watched_server() -> subprocess.Popen[bytes] | None:
    """Start Prefect's temporary server now, and a watchdog that stops it if we are killed."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    server = SubprocessASGIServer()  # the instance flows use: starting it twice is a no-op
    server.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    process = server.server_process
    if process is None:
        return None
    return subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(process.pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C for the run is not for the watchdog
    )


@contextmanager
def local_prefect() -> Iterator[None]:
    """Run flows with heartbeats off unless a Prefect API (a real server) is configured."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    if PREFECT_API_URL.value():
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        watchdog = _start_watched_server()
        try:
            yield
        finally:
            if watchdog is not None:
                watchdog.terminate()
                watchdog.wait()
