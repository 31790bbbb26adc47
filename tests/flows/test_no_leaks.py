"""Nothing a run leaves behind carries the personal data its agent repeated.

The account-support example's v2 repeats customers' emails, phone numbers and card numbers
(from the CRM notes in its contexts). After the nightly run rolls it back and the report is
built, no results table, ledger, journal, report page, Prefect artifact or log line may hold
any of those values: everything stored is masked (``evals.store_outputs: masked``).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from evals.store import TABLES, ResultsStore
from flows.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.model]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\(?\+?\d[\d ()-]{7,}\d")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")


def personal_data() -> set[str]:
    """The emails, phone and card numbers v2 repeats that v1 (the clean version) does not say.

    Dispute references and order numbers that look like card numbers, and the company's own
    contact details (the contract's allowlist), are in both versions: they are not leaks.
    """
    said: dict[str, dict[str, str]] = {}
    for line in (ROOT / "datasets" / "account-support" / "outputs.jsonl").open():
        row = json.loads(line)
        said.setdefault(row["version"], {})[row["case_id"]] = row["output"]
    found: set[str] = set()
    for case_id, text in said["v2"].items():
        clean = said["v1"].get(case_id, "")
        for pattern in (_EMAIL, _PHONE, _CARD):
            found |= {
                value
                for m in pattern.finditer(text)
                if len(value := m.group(0).strip()) >= 10 and value not in clean
            }
    return found


def test_no_personal_data_in_anything_a_run_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    values = personal_data()
    assert len(values) >= 3, values
    monkeypatch.setenv("IMPACTGATE_SERVING_FILE", str(tmp_path / "serving.json"))
    results, report = tmp_path / "results", tmp_path / "report"
    runner = CliRunner()
    run = runner.invoke(
        cli,
        ["run", "account-support", "--policies", str(ROOT / "policies"), "--results", str(results)],
        catch_exceptions=False,
    )
    assert run.exit_code == 0, run.stderr
    assert "rolled back v2 → v1" in run.stdout
    built = runner.invoke(
        cli,
        [
            "report",
            "--results",
            str(results),
            "--policies",
            str(ROOT / "policies"),
            "--out",
            str(report),
        ],
        catch_exceptions=False,
    )
    assert built.exit_code == 0, built.stderr
    captured = capfd.readouterr()

    texts: dict[str, str] = {
        "run output": run.stdout + run.stderr,
        "logs": captured.out + captured.err,
    }
    store = ResultsStore(results)
    for name in TABLES:
        texts[f"table {name}"] = json.dumps(store.table(name).to_pylist(), default=str)
    for path in [*results.rglob("*"), *report.rglob("*"), tmp_path / "serving.json"]:
        if path.is_file() and path.suffix != ".parquet":  # Parquet is read above, uncompressed
            texts[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    database = PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split("///", 1)[1]
    with sqlite3.connect(database) as db:  # artifacts, logs, flow run results
        for table in ("artifact", "log", "flow_run", "task_run"):
            rows = db.execute(f"SELECT * FROM {table}").fetchall()
            texts[f"prefect {table}"] = json.dumps(rows, default=str)
    assert (
        "j***@mail.example" in texts["table samples"]
        or "m***@mail.example" in texts["table samples"]
    ), "the findings are kept, masked"
    leaks = sorted(
        {(value, where) for where, text in texts.items() for value in values if value in text}
    )
    assert leaks == [], leaks
