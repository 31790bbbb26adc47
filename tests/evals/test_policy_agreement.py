"""``policy_agreement``: the rule packs' verdicts against the owner's labels of them."""

from __future__ import annotations

import copy
from pathlib import Path

from evals.contract import load_contract
from evals.labelling import export_rows, import_labels, write_label_file
from evals.metrics import judge_agreement
from evals.runs import RunSession
from evals.store import MetricRecord, ResultsStore
from tests.helpers import CONTRACT, make_project


def _project(tmp: Path) -> Path:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"] = {
        "approval": {
            "gates": {"policy_violation_rate": {"max": 0.6}, "policy_agreement": {"min": 0.8}}
        },
    }
    data["autonomy"]["level"] = "approval"
    data["autonomy"]["rollback"]["metrics"] = []
    return make_project(tmp, data)


def _agreement(contract: Path, results: Path) -> MetricRecord:
    with RunSession.open(contract, str(results), use_cache=False) as session:
        outcome = session.run(act=False)
    metric = outcome.result.record.metrics["policy_agreement"]
    if metric.value is not None:
        assert any(
            n.startswith("policy labels: the rule packs agree with your") for n in outcome.notes
        )
    return metric


def test_policy_agreement_is_inconclusive_without_labels_and_gated_with_them(
    tmp_path: Path,
) -> None:
    contract = _project(tmp_path)
    results = tmp_path / "results"
    first = _agreement(contract, results)
    assert first.verdict == "inconclusive"
    assert first.reason is not None
    assert "nobody has checked the policy rule packs against your own labels yet" in first.reason
    assert "impactgate labels export tiny-agent --kind policy" in first.reason

    store = ResultsStore(results)
    _, rows = export_rows(load_contract(contract), store, "policy", 60)
    flags = [row["judge_flag"] for row in rows]
    assert sorted(flags) == [0, 0, 0, 0, 1, 1, 1, 1], "both sides of the verdict to label"
    # The owner calls three of the four flagged outputs false alarms and one clean output a
    # real violation.
    flagged = [i for i, f in enumerate(flags) if f]
    clean = [i for i, f in enumerate(flags) if not f]
    labels = list(flags)
    for i in flagged[:3]:
        labels[i] = 0
    labels[clean[0]] = 1
    for row, label in zip(rows, labels, strict=True):
        row["label"] = label
    path = tmp_path / "policy-labels.csv"
    write_label_file(rows, path)
    assert import_labels(path, "owner@example.test", store).new == len(rows)

    second = _agreement(contract, results)
    expected = judge_agreement(labels, flags).balanced_accuracy
    assert expected is not None
    assert second.value == expected.value == 0.5
    assert (second.low, second.high) == (expected.low, expected.high)
    assert second.verdict == "fail"
    assert second.note is not None
    assert "Cohen's κ" in second.note
    assert "2 labelled real violations, 6 false alarms or clean" in second.note
