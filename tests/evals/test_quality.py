"""Agreement with labels: confusion counts and ROC AUC against values worked by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from evals.metrics import Confusion, roc_auc


def test_confusion_counts_and_its_ratios() -> None:
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    flagged = [1, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    c = Confusion.of(labels, flagged)
    assert (c.tp, c.fp, c.fn, c.tn, c.n) == (3, 1, 1, 5, 10)
    assert c.precision == pytest.approx(3 / 4)
    assert c.recall == pytest.approx(3 / 4)
    assert c.f1 == pytest.approx(3 / 4)
    assert c.false_alarm_rate == pytest.approx(1 / 6)
    assert c.balanced_accuracy == pytest.approx((3 / 4 + 5 / 6) / 2)


def test_confusion_reads_booleans_and_is_defined_without_flags_or_classes() -> None:
    assert Confusion.of([True, False], [False, False]) == Confusion(0, 0, 1, 1)
    nothing_flagged = Confusion.of([1, 0], [0, 0])
    assert (nothing_flagged.precision, nothing_flagged.recall, nothing_flagged.f1) == (0, 0, 0)
    assert Confusion.of([0, 0], [1, 0]).balanced_accuracy is None, "no positive rows"
    assert Confusion.of([], []).n == 0
    with pytest.raises(ValueError, match="2 labels but 1 flags"):
        Confusion.of([1, 0], [1])


def _pairwise_auc(labels: list[int], scores: list[float]) -> float:
    """The definition: over every (positive, negative) pair, 1 if the positive scores higher,
    a half for a tie."""
    pos = [s for y, s in zip(labels, scores, strict=True) if y]
    neg = [s for y, s in zip(labels, scores, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_matches_the_pairwise_definition_with_ties() -> None:
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.5
    rng = np.random.default_rng(3)
    labels = [int(v) for v in rng.integers(0, 2, 60)]
    scores = [float(v) for v in rng.integers(0, 5, 60)]  # many ties
    assert roc_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores))


def test_roc_auc_needs_both_classes() -> None:
    assert roc_auc([1, 1], [0.2, 0.3]) is None
    assert roc_auc([], []) is None
    with pytest.raises(ValueError, match="1 labels but 2 scores"):
        roc_auc([1], [0.1, 0.2])
