"""How well a judge or a rule pack agrees with labels: confusion counts and ROC AUC.

Label 1 is the event a judge looks for (an unsupported answer, a policy violation); a row is
*flagged* when the judge says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Confusion", "roc_auc"]


@dataclass(frozen=True)
class Confusion:
    """Flags against labels: true and false positives, false and true negatives.

    A ratio whose denominator is zero is 0.0 (nothing flagged has precision 0.0), except the
    balanced accuracy, which is ``None`` unless both classes are present.
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def of(
        cls, labels: Sequence[int | bool] | np.ndarray, flagged: Sequence[int | bool] | np.ndarray
    ) -> Confusion:
        """Count ``flagged`` against ``labels`` (truthy = 1), pair by pair.

        Raises:
            ValueError: the two sequences differ in length.
        """
        if len(labels) != len(flagged):
            raise ValueError(f"{len(labels)} labels but {len(flagged)} flags")
        y = np.asarray(labels, dtype=bool)
        f = np.asarray(flagged, dtype=bool)
        tp, fp, fn = int((y & f).sum()), int((f & ~y).sum()), int((y & ~f).sum())
        return cls(tp, fp, fn, int(y.size) - tp - fp - fn)

    @property
    def n(self) -> int:
        """Labelled rows counted."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        """Share of flagged rows that are labelled 1."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """Share of rows labelled 1 that are flagged."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alarm_rate(self) -> float:
        """Share of rows labelled 0 that are flagged."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def balanced_accuracy(self) -> float | None:
        """Mean of the recall on each class; ``None`` when a class has no rows."""
        if not (self.tp + self.fn) or not (self.fp + self.tn):
            return None
        return (self.recall + 1.0 - self.false_alarm_rate) / 2


def roc_auc(labels: Sequence[int | bool], scores: Sequence[float]) -> float | None:
    """ROC AUC of ``scores`` for label 1: the chance a random 1 outscores a random 0.

    Computed from the Mann–Whitney rank sum, so tied scores count half.

    Returns:
        The AUC in ``[0, 1]``; ``None`` when either class has no rows.

    Raises:
        ValueError: the two sequences differ in length.
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    positive = np.asarray([bool(y) for y in labels], dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return None
    from scipy.stats import rankdata  # imported here: scipy.stats takes about a second to load

    ranks = rankdata(np.asarray(scores, dtype=np.float64))  # ties get their average rank
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
