"""The offline judge on held-out benchmark rows (slow: reads ../shared/benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.judges import OfflineGroundingJudge

BENCHMARKS = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "faithfulness"

pytestmark = pytest.mark.slow


def _report_rows(name: str, limit: int) -> list[dict[str, object]]:
    import hashlib

    rows = []
    with (BENCHMARKS / f"{name}.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if int(hashlib.sha256(row["context"].encode()).hexdigest(), 16) % 10 >= 4:
                rows.append(row)
            if len(rows) == limit:
                break
    return rows


def _auc(labels: list[int], scores: list[float]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    neg = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.skipif(
    not BENCHMARKS.is_dir(), reason="the shared benchmark data is not beside the project"
)
@pytest.mark.parametrize(("dataset", "floor"), [("begin_true", 0.80), ("halueval_qa", 0.85)])
def test_held_out_rows_rank_unsupported_answers_first(dataset: str, floor: float) -> None:
    rows = _report_rows(dataset, 200)
    verdicts = OfflineGroundingJudge().judge(
        [(str(r["answer"]), [str(r["context"])]) for r in rows]
    )
    auc = _auc([int(r["label"]) for r in rows], [1 - v.support_score for v in verdicts])  # type: ignore[call-overload]
    assert auc >= floor, f"{dataset}: AUC {auc:.3f} fell below {floor}"
