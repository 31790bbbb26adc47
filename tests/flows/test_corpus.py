"""The malformed-input corpus: every bad file gets one line naming its file, line and field.

``tests/corpus/<kind>/`` holds real files, each wrong in one way, and ``expected.yaml`` beside
them: file → the line, the field (as the message names it) and a fragment of the message.
Each file is put into a tiny project and read by the real command: ``impactgate validate``
for contracts, rule packs, datasets, recordings and label files (as the file a contract's
calibration names), ``impactgate judge policy --input`` for labelled rows, ``impactgate
ingest`` for telemetry files. The command must exit 2 with that line and no traceback. See
docs/design/hardening.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from flows.cli.main import cli
from tests.helpers import make_project

pytestmark = pytest.mark.long  # several seconds: sent out early (tests/conftest.py)

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
KINDS = ("contracts", "rulepacks", "datasets", "recordings", "judge-rows", "labels", "telemetry")
LINE_KINDS = {"contracts", "rulepacks", "labels"}
"""Kinds whose problems read ``file:line: field: message``; the others name a row or line."""

Runner = Callable[[Path, Path], tuple[list[str], str]]


def _validate(tmp: Path, folder: str) -> Callable[[Path], tuple[list[str], str]]:
    def place(source: Path) -> tuple[list[str], str]:
        shutil.copy(source, tmp / folder / source.name)
        return ["validate", "--policies", "policies"], f"{folder}/{source.name}"

    return place


def _contracts(tmp: Path, source: Path) -> tuple[list[str], str]:
    return _validate(tmp, "policies")(source)


def _rulepacks(tmp: Path, source: Path) -> tuple[list[str], str]:
    return _validate(tmp, "policies/rules")(source)


def _pointed_at(field: str) -> Runner:
    """A runner that makes the tiny project's contract read the file as ``field``."""

    def run(tmp: Path, source: Path) -> tuple[list[str], str]:
        shown = f"datasets/tiny-agent/{source.name}"
        shutil.copy(source, tmp / shown)
        contract = tmp / "policies" / "tiny-agent.yaml"
        data = yaml.safe_load(contract.read_text(encoding="utf-8"))
        if field == "dataset":
            data["evals"]["dataset"] = shown
        elif field == "labels":
            data["evals"]["grounding"] = {"calibration": {"labels": shown}}
        else:
            data["evals"]["target"]["outputs"] = shown
        contract.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return ["validate", "--policies", "policies"], shown

    return run


def _judge_rows(tmp: Path, source: Path) -> tuple[list[str], str]:
    shutil.copy(source, tmp / source.name)
    args = ["judge", "policy", "--input", source.name, "--output", "scored.jsonl"]
    return [*args, "--rules", "policies/rules/default.yaml"], source.name


def _ingest(tmp: Path, source: Path) -> tuple[list[str], str]:
    shutil.copy(source, tmp / source.name)
    return ["ingest", source.name, "--results", "results", "--policies", "policies"], source.name


RUNNERS: dict[str, Runner] = {
    "contracts": _contracts,
    "rulepacks": _rulepacks,
    "datasets": _pointed_at("dataset"),
    "recordings": _pointed_at("outputs"),
    "judge-rows": _judge_rows,
    "labels": _pointed_at("labels"),
    "telemetry": _ingest,
}


def expectations(kind: str) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((CORPUS / kind / "expected.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def corpus() -> list[Any]:
    return [
        pytest.param(kind, name, expected, id=f"{kind}/{name}")
        for kind in KINDS
        for name, expected in expectations(kind).items()
    ]


def test_every_corpus_file_has_an_expected_message_and_each_expectation_a_file() -> None:
    for kind in KINDS:
        files = {p.name for p in (CORPUS / kind).iterdir() if p.name != "expected.yaml"}
        assert files == set(expectations(kind)), kind
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} == set(KINDS)


@pytest.mark.parametrize(("kind", "name", "expected"), corpus())
def test_a_malformed_file_gets_one_line_naming_its_file_line_and_field(
    kind: str,
    name: str,
    expected: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = RUNNERS[kind]
    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    args, shown = runner(tmp_path, CORPUS / kind / name)
    result = CliRunner().invoke(cli, args)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, output
    line, field, message = expected["line"], expected["field"], expected["message"]
    if kind in LINE_KINDS:
        location = f"{shown}:{line}: {field}: "
    else:
        assert f"line {line}" in field, "a row's field names its line"
        location = f"{shown}: {field}: "
    found = [text for text in result.stderr.splitlines() if location in text and message in text]
    assert found, f"no line with {location!r} and {message!r} in:\n{result.stderr}"
    assert all(text.startswith("error ") for text in found)
