"""``impactgate labels export`` / ``import``: the labelling loop from the command line.

The stored run is written directly (a grounding run would load the embedding model), with the
judge's verdicts in its samples as a real run stores them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from evals.store import ResultsStore, SampleRecord
from flows.cli.main import cli
from tests.helpers import CASES, make_project, store_run


def _stored_run(results: Path) -> None:
    samples = []
    for i, case in enumerate(CASES, start=1):
        support = i / 10  # c1 … c8: 0.1 … 0.8
        text = f"Refunds take {i} days. Write to jane.roe@mail.example."
        evidence = {
            "judge": "offline",
            "claims": [
                {
                    "text": text,
                    "probability": support,
                    "verdict": "supported" if support >= 0.5 else "unsupported",
                    "reasons": [f"support {support:.2f}"],
                }
            ],
        }
        samples.append(
            SampleRecord(
                run_id="r1",
                case_id=case["id"],
                metric="hallucination",
                value=float(support < 0.5),
                passed=support >= 0.5,
                explanation="",
                evidence=evidence,
                output=text,
                version="v2",
            )
        )
    store_run(results, samples)


def test_export_label_import_and_import_again(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    results = tmp_path / "results"
    _stored_run(results)
    out = tmp_path / "labels.csv"
    runner = CliRunner()
    args = ["--results", str(results), "--policies", str(contract.parent)]
    done = runner.invoke(
        cli, ["labels", "export", "tiny-agent", "--n", "6", "--out", str(out), *args]
    )
    assert done.exit_code == 0, done.output
    assert "6 grounding items of tiny-agent run r1 (3 the judge flags, 3 it passes)" in done.output
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert {r["label"] for r in rows} == {""}
    scores = [float(r["judge_score"]) for r in rows]
    assert scores == sorted(scores)
    assert min(scores) == 0.1
    assert max(scores) == 0.8
    assert all("jane.roe@mail.example" not in r["answer"] for r in rows), "masked like outputs"
    assert json.loads(rows[0]["claims"])[0]["reasons"] == ["support 0.10"]

    # A person labels them: the low-support answers are the unsupported ones.
    for row in rows:
        row["label"] = "1" if float(row["judge_score"]) < 0.5 else "0"
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    first = runner.invoke(cli, ["labels", "import", str(out), "--by", "ana", *args])
    assert first.exit_code == 0, first.output
    assert "tiny-agent: 6 new, 0 changed, 0 unchanged label(s)" in first.output
    stored = ResultsStore(results).labels("tiny-agent")
    assert [(r.labelled_by, r.label) for r in stored].count(("ana", 1)) == 3
    again = runner.invoke(cli, ["labels", "import", str(out), "--by", "ana", *args])
    assert "0 new, 0 changed, 6 unchanged label(s) — nothing to store" in again.output
    assert ResultsStore(results).labels("tiny-agent") == stored


def test_import_refuses_a_bad_file_with_every_row_named(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    results = tmp_path / "results"
    _stored_run(results)
    out = tmp_path / "labels.jsonl"
    runner = CliRunner()
    args = ["--results", str(results), "--policies", str(contract.parent)]
    runner.invoke(cli, ["labels", "export", "tiny-agent", "--n", "4", "--out", str(out), *args])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    rows[0]["label"] = 1
    rows[1]["label"] = "yes"
    rows[2]["case_id"] = "c99"
    rows[2]["id"] = rows[2]["id"].replace(":c", ":c99x", 1)
    rows[3]["label"] = 0
    rows.append({**rows[0], "label": 0})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = runner.invoke(cli, ["labels", "import", str(out), "--by", "ana", *args])
    assert done.exit_code == 2
    assert "labels.jsonl:2: label: must be 1" in done.output
    assert "labels.jsonl:3:" in done.output
    assert "labels.jsonl:5: label: says 0 but line 1 labels the same item 1" in done.output
    assert ResultsStore(results).labels("tiny-agent") == [], "nothing half-stored"


def test_export_without_a_run_says_what_to_do(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    done = CliRunner().invoke(
        cli,
        [
            "labels", "export", "tiny-agent", "--out", str(tmp_path / "l.csv"),
            "--results", str(tmp_path / "none"), "--policies", str(contract.parent),
        ],
    )  # fmt: skip
    assert done.exit_code == 2
    assert "no run of tiny-agent" in done.output
    assert "impactgate run tiny-agent" in done.output


def test_policy_findings_export_both_flagged_and_clean_outputs(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    results = tmp_path / "results"
    samples = [
        SampleRecord(
            run_id="r1",
            case_id=case["id"],
            metric="policy_violation",
            value=float(i % 2 == 0),
            passed=i % 2 != 0,
            explanation="",
            evidence={"violations": [{"rule": "pii.email"}]} if i % 2 == 0 else {"violations": []},
            output=f"answer {i}",
            version="v2",
        )
        for i, case in enumerate(CASES, start=1)
    ]
    store_run(results, samples)
    out = tmp_path / "policy.jsonl"
    args = ["--results", str(results), "--policies", str(contract.parent)]
    done = CliRunner().invoke(
        cli,
        [
            "labels",
            "export",
            "tiny-agent",
            "--kind",
            "policy",
            "--n",
            "4",
            "--out",
            str(out),
            *args,
        ],
    )
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["judge_flag"] for r in rows].count(1) == 2
    assert all(r["id"].startswith("policy:") for r in rows)
    assert [r["findings"] for r in rows if r["judge_flag"]] == [[{"rule": "pii.email"}]] * 2


def test_export_never_replaces_a_file_without_force(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    results = tmp_path / "results"
    _stored_run(results)
    args = ["--results", str(results), "--policies", str(contract.parent)]
    runner = CliRunner()
    labelled = tmp_path / "labels.csv"
    labelled.write_text("id,label\nsomeone's work,1\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere" / "notes.csv"
    dangling = tmp_path / "link.csv"
    dangling.symlink_to(elsewhere)
    for out in (labelled, dangling):
        done = runner.invoke(cli, ["labels", "export", "tiny-agent", "--out", str(out), *args])
        assert done.exit_code == 2, done.output
        assert "--out: already exists; choose another name, or add --force" in done.output
    assert labelled.read_text(encoding="utf-8") == "id,label\nsomeone's work,1\n"
    assert dangling.is_symlink()
    assert not elsewhere.parent.exists(), "nothing written through the link"

    forced = runner.invoke(
        cli,
        ["labels", "export", "tiny-agent", "--n", "4", "--out", str(dangling), "--force", *args],
    )
    assert forced.exit_code == 0, forced.output
    assert not dangling.is_symlink(), "the name given is replaced, never the link's target"
    assert not elsewhere.parent.exists()
    assert len(list(csv.DictReader(dangling.open(encoding="utf-8")))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "link.csv", "p", "results"]
