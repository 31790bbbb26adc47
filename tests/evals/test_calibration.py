"""Calibrating a judge on labels, its agreement and drift: the maths on seeded synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from evals.metrics import (
    Calibration,
    CalibrationError,
    agreement_drift,
    apply_calibration,
    fit_calibration,
    judge_agreement,
)


def _rows(
    n: int, separation: float, seed: int, unsupported: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Support scores: supported answers ~ N(separation, 1), unsupported ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < unsupported
    support = np.where(labels, rng.normal(0.0, 1.0, n), rng.normal(separation, 1.0, n))
    return support, labels


def _true_balanced_accuracy(threshold: float, separation: float) -> float:
    return 0.5 * (norm.cdf(threshold, 0.0, 1.0) + 1.0 - norm.cdf(threshold, separation, 1.0))


def test_agreement_matches_the_hand_computed_table() -> None:
    # 8 labelled 1 (6 flagged), 12 labelled 0 (3 flagged)
    labels = [1] * 8 + [0] * 12
    flags = [1] * 6 + [0] * 2 + [1] * 3 + [0] * 9
    agreement = judge_agreement(labels, flags)
    assert agreement.balanced_accuracy is not None
    assert agreement.kappa is not None
    assert agreement.balanced_accuracy.value == pytest.approx((6 / 8 + 9 / 12) / 2)
    observed, chance = 15 / 20, (9 / 20) * (8 / 20) + (11 / 20) * (12 / 20)
    assert agreement.kappa.value == pytest.approx((observed - chance) / (1 - chance))
    assert agreement.accuracy == pytest.approx(0.75)
    for estimate in (agreement.balanced_accuracy, agreement.kappa):
        assert estimate.low < estimate.value < estimate.high
    assert judge_agreement(labels, flags) == agreement, "seeded from the data: identical reruns"
    assert "balanced accuracy is 0.75" in agreement.reason


def test_agreement_on_small_samples_is_honestly_uncertain() -> None:
    perfect_few = judge_agreement([1] * 5 + [0] * 5, [1] * 5 + [0] * 5)
    assert perfect_few.balanced_accuracy is not None
    assert perfect_few.balanced_accuracy.value == 1.0
    assert perfect_few.balanced_accuracy.low < 0.9, "ten rows cannot prove a perfect judge"
    perfect_many = judge_agreement([1] * 500 + [0] * 500, [1] * 500 + [0] * 500)
    assert perfect_many.balanced_accuracy is not None
    assert perfect_many.balanced_accuracy.low > 0.99


@pytest.mark.parametrize(
    ("labels", "flags", "reason"),
    [
        ([], [], "no labelled rows"),
        ([0, 0, 0], [0, 1, 0], "all 3 labels say fine (0)"),
        ([1, 1], [1, 1], "all 2 labels say unsupported or violating (1)"),
    ],
)
def test_agreement_is_undefined_with_a_reason_on_degenerate_labels(
    labels: list[int], flags: list[int], reason: str
) -> None:
    agreement = judge_agreement(labels, flags)
    assert agreement.balanced_accuracy is None
    assert agreement.kappa is None
    assert not agreement.defined
    assert reason in agreement.reason
    if 0 in labels:
        assert agreement.false_alarm_rate is not None
        assert agreement.false_alarm_rate.value == pytest.approx(1 / 3)


def test_agreement_accepts_shares_of_repeated_flags() -> None:
    agreement = judge_agreement([1, 1, 0, 0], [0.5, 1.0, 0.0, 0.25])
    assert agreement.balanced_accuracy is not None
    assert agreement.balanced_accuracy.value == pytest.approx((0.75 + 0.875) / 2)


@pytest.mark.parametrize(
    ("labels", "flags", "message"),
    [([1, 0], [1], "2 labels but 1 flags"), ([2, 0], [1, 0], "labels must be 0 or 1")],
)
def test_agreement_rejects_inputs_that_do_not_line_up(
    labels: list[int], flags: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        judge_agreement(labels, flags)


def test_balanced_fit_without_bagging_is_the_best_threshold_on_the_rows() -> None:
    support, labels = _rows(60, 1.5, seed=3)
    calibration = fit_calibration(support, labels, bags=0, repeats=2)
    values = np.unique(support)
    candidates = np.concatenate([[values[0]], (values[:-1] + values[1:]) / 2, [values[-1] + 1]])
    accuracy = [
        judge_agreement(labels, support < t).balanced_accuracy.value  # type: ignore[union-attr]
        for t in candidates
    ]
    assert calibration.fitted.balanced_accuracy is not None
    assert calibration.fitted.balanced_accuracy.value == pytest.approx(max(accuracy))


def test_budget_fit_catches_the_most_within_the_budget_on_the_rows() -> None:
    support, labels = _rows(80, 1.5, seed=4)
    calibration = fit_calibration(
        support, labels, objective="false_alarm_budget", budget=0.1, bags=0, repeats=2
    )
    flagged = apply_calibration(calibration, support)
    negatives = np.sort(support[~labels])
    assert flagged[~labels].mean() <= 0.1
    # One more supported answer flagged would break the budget.
    allowed = int(np.floor(0.1 * len(negatives)))
    assert calibration.threshold <= negatives[allowed]
    assert flagged[~labels].sum() == allowed


def test_fit_is_deterministic_and_ignores_row_order() -> None:
    support, labels = _rows(50, 1.0, seed=5)
    first = fit_calibration(support, labels, repeats=5)
    order = np.random.default_rng(0).permutation(50)
    again = fit_calibration(support[order], labels[order], repeats=5)
    assert first == again
    assert Calibration.from_dict(first.to_dict()) == first


@pytest.mark.parametrize(
    ("support", "labels", "message"),
    [
        ([0.2, 0.4, 0.9], [0, 0, 0], "0 unsupported and 3 supported"),
        ([0.2, 0.4, 0.9, 0.8], [1, 0, 0, 0], "label more answers the owner judges unsupported"),
        ([0.2, 0.4, 0.9, 0.8], [1, 1, 1, 0], "label more answers that are fine"),
    ],
)
def test_too_few_labels_of_a_kind_are_refused_with_what_to_label(
    support: list[float], labels: list[int], message: str
) -> None:
    with pytest.raises(CalibrationError, match=message):
        fit_calibration(support, labels)


def test_objective_settings_are_checked() -> None:
    support, labels = _rows(20, 1.0, seed=6)
    with pytest.raises(ValueError, match="needs a budget"):
        fit_calibration(support, labels, objective="false_alarm_budget")
    with pytest.raises(ValueError, match="budget applies to the false_alarm_budget"):
        fit_calibration(support, labels, budget=0.1)


def test_the_interval_narrows_with_labels_and_says_so_when_wide() -> None:
    few = fit_calibration(*_rows(12, 1.5, seed=7), repeats=5)
    many = fit_calibration(*_rows(600, 1.5, seed=7), repeats=2, bags=20)
    assert few.cross_validated.balanced_accuracy is not None
    assert many.cross_validated.balanced_accuracy is not None
    few_width = (
        few.cross_validated.balanced_accuracy.high - few.cross_validated.balanced_accuracy.low
    )
    many_width = (
        many.cross_validated.balanced_accuracy.high - many.cross_validated.balanced_accuracy.low
    )
    assert few_width > 0.3 > 0.12 > many_width
    assert any("label more answers to narrow it" in note for note in few.notes)
    assert not many.notes


def test_cross_validated_interval_covers_the_true_accuracy_of_the_fitted_threshold() -> None:
    covered, errors = 0, []
    simulations = 60
    for seed in range(simulations):
        support, labels = _rows(40, 1.2, seed=100 + seed)
        calibration = fit_calibration(support, labels, repeats=4, bags=50)
        truth = _true_balanced_accuracy(calibration.threshold, 1.2)
        estimate = calibration.cross_validated.balanced_accuracy
        assert estimate is not None
        covered += estimate.low <= truth <= estimate.high
        errors.append(estimate.value - truth)
    assert covered / simulations >= 0.85
    assert abs(float(np.mean(errors))) < 0.03, "the cross-validated estimate is not optimistic"


def test_a_useless_judge_is_called_out() -> None:
    rng = np.random.default_rng(8)
    labels = rng.random(60) < 0.5
    calibration = fit_calibration(np.full(60, 0.7), labels, repeats=2)
    assert calibration.cross_validated.balanced_accuracy is not None
    assert calibration.cross_validated.balanced_accuracy.value == pytest.approx(0.5)
    assert any("do not separate the labels" in note for note in calibration.notes)


def test_provenance_decides_whether_a_calibration_applies() -> None:
    support, labels = _rows(30, 1.5, seed=9)
    calibration = fit_calibration(
        support, labels, labels_hash="abc", judge_fingerprint="offline:1", repeats=2
    )
    assert calibration.labels_hash == "abc"
    assert calibration.applies_to("offline:1") is None
    assert "the judge changed since it was calibrated" in str(calibration.applies_to("offline:2"))
    assert fit_calibration(support, labels, repeats=2).labels_hash, "hashed from the data"


def test_scores_in_another_scale_flag_the_same_labelled_answers() -> None:
    support, labels = _rows(50, 1.0, seed=30)
    stretched = np.exp(3.0 * support)  # an increasing transform: same order, other scale
    plain = fit_calibration(support, labels, repeats=2)
    other = fit_calibration(stretched, labels, repeats=2)
    assert np.array_equal(plain.flags(support), other.flags(stretched))
    assert plain.fitted == other.fitted
    assert plain.cross_validated == other.cross_validated


def test_drift_holds_when_fresh_labels_agree_as_calibrated() -> None:
    calibration = fit_calibration(*_rows(60, 1.5, seed=10))
    drift = agreement_drift(calibration, *_rows(60, 1.5, seed=11))
    assert drift.status == "holds"
    assert not drift.drifted
    assert drift.reason.startswith("The judge still agrees with you")


def test_drift_is_found_when_the_judge_stops_separating_the_labels() -> None:
    calibration = fit_calibration(*_rows(60, 2.0, seed=12))
    drift = agreement_drift(calibration, *_rows(80, 0.1, seed=13))
    assert drift.status == "drifted"
    assert drift.drifted
    assert drift.reason.startswith("The judge no longer agrees with you: on 80 freshly labelled")
    assert "Recalibrate" in drift.reason


def test_a_small_dip_on_few_fresh_labels_is_unclear_not_an_incident() -> None:
    calibration = fit_calibration(*_rows(200, 2.0, seed=14), bags=50, repeats=4)
    # Twelve fresh labels around the calibrated threshold: 4 of 6 unsupported answers flagged
    # and 4 of 6 supported ones passed, a balanced accuracy of 0.67.
    t = calibration.threshold
    support = [t - 1, t - 1, t - 1, t - 1, t + 1, t + 1] + [t + 1] * 4 + [t - 1] * 2
    drift = agreement_drift(calibration, support, [1] * 6 + [0] * 6)
    assert drift.fresh is not None
    assert drift.fresh.balanced_accuracy is not None
    assert drift.fresh.balanced_accuracy.value < drift.calibrated.low
    assert drift.status == "unclear"
    assert "label more answers to decide" in drift.reason


def test_drift_check_refuses_another_judge_and_one_sided_labels() -> None:
    calibration = fit_calibration(
        *_rows(40, 1.5, seed=16), judge_fingerprint="offline:a", repeats=2
    )
    stale = agreement_drift(calibration, [0.5], [1], judge_fingerprint="offline:b")
    assert stale.status == "stale"
    assert "recalibrate" in stale.reason
    unknown = agreement_drift(calibration, [0.2, 0.9], [0, 0])
    assert unknown.status == "unknown"
    assert "agreement needs labelled rows of both kinds" in unknown.reason
