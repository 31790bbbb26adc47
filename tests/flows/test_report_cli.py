"""``impactgate report`` through click's runner: what it writes, prints and exits with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from evals.report import site_pages
from flows.cli.main import cli
from tests.evals.test_report_history import ROOT, History, write_history

POLICIES = str(ROOT / "policies")


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return write_history(tmp_path_factory.mktemp("cli") / "results", nights=2)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.model
def test_report_writes_the_site_and_says_where(history: History, tmp_path: Path) -> None:
    out = tmp_path / "site"
    code, stdout, _ = invoke(
        "report", "--results", str(history.results), "--policies", POLICIES, "--out", str(out)
    )
    assert code == 0
    assert f"{out / 'index.html'} (3 agent(s), " in stdout
    assert (out / "agents" / "account-support.html").is_file()


@pytest.mark.model
def test_report_json_names_every_page_and_prints_nothing_else(
    history: History, tmp_path: Path
) -> None:
    code, stdout, _ = invoke(
        "report", "returns-concierge", "--results", str(history.results), "--policies", POLICIES,
        "--out", str(tmp_path / "site"), "--runs", "1", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(stdout)
    assert data["agents"] == ["returns-concierge"]
    pages = [Path(p) for p in data["pages"]]
    assert all(p.is_file() for p in pages)
    # One run page with --runs 1: the latest run, which is also the latest incident's.
    run_pages = [p for p in pages if p.parent.name == "returns-concierge"]
    site = site_pages(history.results, policies=POLICIES, agents=["returns-concierge"], run_pages=1)
    assert [p.stem for p in run_pages] == [r.run_id for r in site.runs]
    assert [r.run_id for r in site.runs] == history.runs["returns-concierge"][-1:]


@pytest.mark.model
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "returns-conceirge"], "agent 'returns-conceirge' (did you mean 'returns-concierge'?)"),
        (["report", "--runs", "-1"], "Invalid value for '--runs'"),
        (["report", "--results", "{missing}"], "no results folder here"),
        (["report", "--out", "{occupied}"], "--out: exists and is not an impactgate report"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(
    history: History, tmp_path: Path, args: list[str], message: str
) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    defaults = {
        "--results": str(history.results),
        "--policies": POLICIES,
        "--out": str(tmp_path / "site"),
    }
    args = [a.format(missing=tmp_path / "missing", occupied=occupied) for a in args]
    for option, value in defaults.items():
        if option not in args:
            args += [option, value]
    code, _, stderr = invoke(*args)
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr
    assert (occupied / "keep.txt").read_text() == "mine"
