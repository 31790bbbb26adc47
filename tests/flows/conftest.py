"""One Prefect test harness per session (about 20 s to start), heartbeats off."""

from __future__ import annotations

import re
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


_HARNESS_MODULE = re.compile(r'^pytestmark = .*usefixtures\("prefect_harness"\)', re.MULTILINE)


def _deselects_harness(markexpr: str) -> bool:
    """Whether ``-m markexpr`` leaves out every test with the ``harness`` marker.

    Exact for the expressions the fast subset uses: a plain conjunction holding
    ``not harness``. Anything with ``or`` or parentheses counts as keeping them.
    """
    if "(" in markexpr or re.search(r"\bor\b", markexpr):
        return False
    return any(part.strip() == "not harness" for part in re.split(r"\band\b", markexpr))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Modules whose every test needs the harness are not imported when none of them would run.

    Such a module says so on one line (``pytestmark = pytest.mark.usefixtures(
    "prefect_harness")``), so every test in it carries the ``harness`` marker. Importing it
    imports Prefect (about 1.4 s a test process), which the fast subset otherwise never needs.
    """
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if not _deselects_harness(config.getoption("markexpr") or ""):
        return None
    if _HARNESS_MODULE.search(collection_path.read_text(encoding="utf-8")):
        return True
    return None
