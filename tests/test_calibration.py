"""Thresholds calibrated to a target FPR, verdict bands, and metric definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakescope.calibration.threshold import calibrate_threshold, threshold_at_fpr
from fakescope.evaluation.metrics import binary_metrics, tpr_at_fpr


@given(
    scores=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=300),
    target=st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.3]),
)
@settings(max_examples=200, deadline=None)
def test_threshold_never_exceeds_target_fpr_and_is_tight(scores, target):
    real = np.array(scores)
    threshold = threshold_at_fpr(real, target)
    assert np.mean(real >= threshold) <= target + 1e-12
    # Tight: any lower candidate (the next score down) would break the target.
    lower = real[real < threshold]
    if lower.size:
        assert np.mean(real >= lower.max()) > target


def test_calibration_on_synthetic_scores_hits_its_fpr_on_fresh_reals():
    rng = np.random.default_rng(0)
    calibration = calibrate_threshold(rng.beta(2, 8, 5000), target_fpr=0.05, review_fpr=0.2)
    fresh = rng.beta(2, 8, 20000)
    assert np.mean(fresh >= calibration.threshold) == pytest.approx(0.05, abs=0.01)
    assert np.mean(fresh >= calibration.review_threshold) == pytest.approx(0.20, abs=0.015)
    assert calibration.warnings == []


def test_verdict_bands():
    calibration = calibrate_threshold(np.linspace(0, 1, 101), target_fpr=0.05, review_fpr=0.2)
    assert calibration.review_threshold < calibration.threshold
    assert calibration.verdict(0.99) == "fake"
    assert calibration.verdict(0.85) == "uncertain"
    assert calibration.verdict(0.3) == "real"


def test_small_calibration_sets_warn():
    calibration = calibrate_threshold(np.array([0.1, 0.2, 0.3]), target_fpr=0.05)
    assert calibration.threshold > 0.3
    assert any("cannot be resolved" in note for note in calibration.warnings)


def test_calibration_rejects_bad_arguments():
    with pytest.raises(ValueError):
        calibrate_threshold(np.array([]))
    with pytest.raises(ValueError):
        calibrate_threshold(np.array([0.5]), target_fpr=0.2, review_fpr=0.1)


def test_metrics_on_a_known_case():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    metrics = binary_metrics(labels, scores, threshold=0.5)
    assert metrics["roc_auc"] == pytest.approx(15 / 16)
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["tpr"] == pytest.approx(0.75) and metrics["fpr"] == pytest.approx(0.25)
    assert metrics["tpr_at_fpr_5"] == pytest.approx(0.75)  # before the real at 0.6 is passed
    assert tpr_at_fpr(labels, scores, 0.25) == pytest.approx(1.0)
    one_class = binary_metrics(np.zeros(3), np.array([0.1, 0.2, 0.3]), threshold=0.5)
    assert one_class["ap"] is None and one_class["fpr"] == 0.0
