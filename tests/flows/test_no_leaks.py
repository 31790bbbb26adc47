"""Nothing a run leaves behind carries the personal data its agent repeated, or a secret.

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
from evals.testing import FakeOpenAIServer, Reply
from flows.cli.main import cli
from tests.helpers import CONTRACT, litellm_project, make_project

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


def everything_left(tmp_path: Path, logs: str) -> dict[str, str]:
    """Every text a run can leave: results tables and files, report, Prefect's database, logs."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    texts: dict[str, str] = {"logs": logs}
    for results in tmp_path.rglob("results"):
        if (results / "runs").is_dir():
            store = ResultsStore(results)
            for name in TABLES:
                texts[f"{results} {name}"] = json.dumps(store.table(name).to_pylist(), default=str)
    made = ("results", "report", "cache")  # what runs write; the project's own files are input
    for path in tmp_path.rglob("*"):
        written = any(part in made for part in path.relative_to(tmp_path).parts)
        if written and path.is_file() and path.suffix != ".parquet":  # Parquet: read above
            texts[str(path.relative_to(tmp_path))] = path.read_bytes().decode("utf-8", "replace")
    database = PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split("///", 1)[1]
    with sqlite3.connect(database) as db:  # every table: artifacts, logs, runs, events …
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()
            texts[f"prefect {table}"] = json.dumps(rows, default=str)
    return texts


def _gated_on_policy_cost_latency() -> dict[str, object]:
    data: dict[str, object] = json.loads(json.dumps(CONTRACT))
    data["evals"]["suites"] = ["policy", "cost", "latency"]  # type: ignore[index]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}  # type: ignore[index]
    return data


def test_no_secret_in_anything_a_run_leaves_whether_it_succeeds_or_gets_401s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    key, token = "sk-live-4f1d9a7c2b8e6d5f", "Bearer agent-token-91c0ffee"
    monkeypatch.setenv("FAKE_LLM_KEY", key)
    monkeypatch.setenv("AGENT_TOKEN", token)
    monkeypatch.setenv("IMPACTGATE_CACHE_DIR", str(tmp_path / "cache"))
    retry = {"attempts": 2, "base_delay_s": 0.01, "max_delay_s": 0.1, "timeout_s": 2}
    runner = CliRunner()
    said: list[str] = []

    def run(*args: str) -> None:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        said.append(result.stdout + result.stderr)
        assert result.exit_code in (0, 1), result.stderr

    with FakeOpenAIServer() as server:
        # The litellm agent gets the key in its prompt and echoes it back; the http agent is
        # sent the token as a header and answers with it. Both must be redacted everywhere.
        llm = litellm_project(
            tmp_path / "llm", server.url, _gated_on_policy_cost_latency(),
            prompt="Q: {{ input }} (key " + key + ")\n", retry=retry,
        )  # fmt: skip
        data = _gated_on_policy_cost_latency()
        data["evals"]["target"] = {  # type: ignore[index]
            "kind": "http", "url": server.agent_url, "version": "build-7",
            "headers": {"Authorization": "AGENT_TOKEN"},
            "response": {"output": "answer", "usage": "usage", "model": "model"}, "retry": retry,
        }  # fmt: skip
        http = make_project(tmp_path / "http", data)
        for project in (llm, http):
            results = str(project.parents[1] / "results")
            if project == http:
                server.enqueue(*[Reply(content=f"your token is {token}")] * 8)
            run("run", "--policies", str(project.parent), "--results", results)
            server.enqueue(*[Reply(status=401)] * 40)  # the key is revoked: every call fails
            run("run", "--no-cache", "--policies", str(project.parent), "--results", results)
            run("report", "--results", results, "--policies", str(project.parent),
                "--out", str(project.parents[1] / "report"))  # fmt: skip
        assert sum(r.get("messages") is not None for r in server.requests) > 0
        assert any(h.get("authorization") == token for h in server.headers), "the token was sent"
    captured = capfd.readouterr()
    texts = everything_left(tmp_path, "".join(said) + captured.out + captured.err)
    assert any("401" in text for where, text in texts.items() if "samples" in where)
    assert any("[REDACTED:FAKE_LLM_KEY]" in text for text in texts.values()), "echo was redacted"
    leaks = sorted(
        {where for where, text in texts.items() for secret in (key, token) if secret in text}
    )
    assert leaks == [], leaks


def test_no_personal_data_in_anything_a_run_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
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

    texts = everything_left(
        tmp_path, run.stdout + run.stderr + built.stdout + captured.out + captured.err
    )
    samples = next(text for where, text in texts.items() if where.endswith(" samples"))
    assert "m***@mail.example" in samples, "the findings are kept, masked"
    leaks = sorted(
        {(value, where) for where, text in texts.items() for value in values if value in text}
    )
    assert leaks == [], leaks
