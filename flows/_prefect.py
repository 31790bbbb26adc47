"""Prefect settings for local runs: heartbeats off and a generous ephemeral start-up timeout.

Without a configured API, Prefect starts a temporary local server. On a fresh machine that
takes longer than Prefect's default 20 s (migrations), and with heartbeats on every flow call
costs about a second more. Neither is worth paying on a laptop or in CI (ENV.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["local_prefect"]

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


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
        yield
