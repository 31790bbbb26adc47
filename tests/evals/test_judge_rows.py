"""A grounding judge over labelled rows, without the CLI: read, judge, record, summarise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from evals.errors import UserError
from evals.judges import (
    Claim,
    GroundingRowsSummary,
    GroundingVerdict,
    judge_grounding_rows,
    read_grounding_rows,
)


class ScriptedJudge:
    """Supports an answer found word for word in a context; fails on the answer "boom"."""

    name = "scripted"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        self.batches.append(len(items))
        verdicts = []
        for answer, contexts in items:
            if answer == "boom":
                verdicts.append(GroundingVerdict([], error="the judge call failed"))
                continue
            supported = any(answer in c for c in contexts)
            claim = Claim(answer, supported, 0.9 if supported else 0.2, contexts[0])
            verdicts.append(GroundingVerdict([claim], judge="" if supported else "scripted-v2"))
        return verdicts


ROWS = [
    {"id": "a", "context": "Refunds take 5 days.", "answer": "Refunds take 5 days.", "label": 0},
    {"id": "b", "context": ["x", "Café 5 €"], "answer": "Café 5 €", "label": False},
    {"id": "c", "context": "Refunds take 5 days.", "answer": "Refunds take 9 days.", "label": 1},
    {"id": "d", "context": "c", "answer": "boom", "label": 1},
    {"id": "e", "context": "c", "answer": "unlabelled", "label": "maybe"},
]


def test_rows_are_judged_in_order_in_batches_with_the_row_kept() -> None:
    judge = ScriptedJudge()
    done: list[int] = []
    judged = list(judge_grounding_rows(judge, ROWS, batch_size=2, on_batch=done.append))
    assert judge.batches == done == [2, 2, 1]
    records = [j.record() for j in judged]
    assert [r["id"] for r in records] == ["a", "b", "c", "d", "e"]
    assert records[0] == {
        **ROWS[0],
        "score": 0.9,
        "label_pred": 0,
        "claims": [
            {
                "text": "Refunds take 5 days.",
                "supported": True,
                "probability": 0.9,
                "evidence": "Refunds take 5 days.",
                "verdict": "supported",
                "reasons": [],
                "features": {},
            }
        ],
        "judge": "scripted",
    }
    assert records[1]["claims"][0]["evidence"] == "x", "a list of contexts is passed as a list"
    assert (records[2]["label_pred"], records[2]["judge"]) == (1, "scripted-v2")
    assert records[3] == {
        **ROWS[3],
        "score": None,
        "label_pred": None,
        "claims": [],
        "error": "the judge call failed",
        "judge": "scripted",
    }
    assert ROWS[0].keys() == {"id", "context", "answer", "label"}, "the input rows are untouched"
    assert json.loads(judged[1].to_json())["answer"] == "Café 5 €"
    assert "\\u00e9" in judged[1].to_json(), "grounding output escapes non-ASCII, as it always did"


def test_summary_leaves_out_errors_and_rows_without_a_binary_label() -> None:
    summary = GroundingRowsSummary.of(list(judge_grounding_rows(ScriptedJudge(), ROWS)))
    assert (summary.rows, summary.errors, summary.unsupported) == (5, 1, 2)
    assert summary.labelled is not None
    # a, b (label 0, supported) and c (label 1, unsupported): d errored, e's label is not 0/1.
    assert (summary.labelled.tp, summary.labelled.fp, summary.labelled.fn) == (1, 0, 0)
    assert summary.labelled.tn == 2
    assert summary.auc == 1.0


def test_summary_without_labels() -> None:
    rows = [{"context": "a", "answer": "a"}, {"context": "a", "answer": "b"}]
    summary = GroundingRowsSummary.of(list(judge_grounding_rows(ScriptedJudge(), rows)))
    assert (summary.labelled, summary.auc, summary.unsupported) == (None, None, 1)


def test_read_grounding_rows_checks_each_line(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text(
        "".join(json.dumps(r) + "\n" for r in ROWS) + '{"question": "q", "answer": "a"}\n',
        encoding="utf-8",
    )
    with pytest.raises(UserError) as raised:
        read_grounding_rows(source)
    [problem] = raised.value.problems
    assert (problem.field, problem.message) == ("line 6: field 'context'", "required")
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    assert read_grounding_rows(source) == ROWS
