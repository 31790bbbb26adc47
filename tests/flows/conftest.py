"""One Prefect test harness per session (about 20 s to start), heartbeats off."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from prefect.settings import (
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    storage: Path = tmp_path_factory.mktemp("prefect-results")
    with (
        temporary_settings(
            updates={
                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                PREFECT_RESULTS_LOCAL_STORAGE_PATH: storage,
            }
        ),
        prefect_test_harness(server_startup_timeout=180),
    ):
        yield


_RAY_TOKEN = secrets.token_hex(32)


@pytest.fixture
def ray_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Token authentication for the Ray tests' instances and clients, with one token a session.

    Ray reads its token once a process, and would otherwise write one to ``~/.ray``. One Ray
    test runs at a time on the machine, whichever test process it is in: two local Ray
    instances starting at once share ``/tmp/ray`` and collide.
    """
    from filelock import FileLock

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", _RAY_TOKEN)
    with FileLock(Path(tempfile.gettempdir()) / "impactgate-tests-ray.lock"):
        yield _RAY_TOKEN


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the Prefect harness carry the ``harness`` marker (the fast subset skips it)."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.harness)
