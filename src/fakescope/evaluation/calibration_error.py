"""Expected calibration error (ECE) and the reliability diagram behind it.

A detector's score is read as P(fake); ECE asks whether it means what it says: of the images
scored about 0.8, are about 80 % fake? Scores are put into ``n_bins`` equal-width bins over
[0, 1] (15, as in Guo et al., ICML 2017), and ECE is the mean over bins, weighted by their share
of images, of ``|fraction fake - mean score|``.

ECE depends on the test set's class balance: a score calibrated on balanced training data is
over-confident on a test set with few fakes. Reports therefore show it beside the base rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BINS = 15


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin counts, mean score and fraction of fakes (empty bins have count 0, NaN means)."""

    edges: np.ndarray  # (n_bins + 1,)
    counts: np.ndarray  # (n_bins,) weighted number of images per bin
    mean_score: np.ndarray  # (n_bins,)
    fraction_fake: np.ndarray  # (n_bins,)


def _bin_index(scores: np.ndarray, n_bins: int) -> np.ndarray:
    # A score of exactly 1.0 belongs to the last bin, not to a bin past the end.
    return np.minimum((np.clip(scores, 0.0, 1.0) * n_bins).astype(np.int64), n_bins - 1)


def reliability_curve(
    labels: np.ndarray,
    scores: np.ndarray,
    n_bins: int = DEFAULT_BINS,
    sample_weight: np.ndarray | None = None,
) -> ReliabilityCurve:
    """The reliability diagram's data: bins of equal width over [0, 1]."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.ones_like(scores) if sample_weight is None else np.asarray(sample_weight, float)
    index = _bin_index(scores, n_bins)
    counts = np.bincount(index, weights=weights, minlength=n_bins)
    score_sums = np.bincount(index, weights=weights * scores, minlength=n_bins)
    fake_sums = np.bincount(index, weights=weights * labels, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.where(counts > 0, score_sums / counts, np.nan)
        fraction_fake = np.where(counts > 0, fake_sums / counts, np.nan)
    return ReliabilityCurve(np.linspace(0.0, 1.0, n_bins + 1), counts, mean_score, fraction_fake)


def expected_calibration_error(
    labels: np.ndarray,
    scores: np.ndarray,
    n_bins: int = DEFAULT_BINS,
    sample_weight: np.ndarray | None = None,
) -> float | None:
    """ECE in [0, 1]; None without any image."""
    curve = reliability_curve(labels, scores, n_bins, sample_weight)
    total = float(curve.counts.sum())
    if total <= 0:
        return None
    used = curve.counts > 0
    gaps = np.abs(curve.fraction_fake[used] - curve.mean_score[used])
    return float(np.sum(curve.counts[used] * gaps) / total)


def expected_calibration_error_batch(
    labels: np.ndarray, scores: np.ndarray, weights: np.ndarray, n_bins: int = DEFAULT_BINS
) -> np.ndarray:
    """ECE for many weightings of the same images at once: ``weights`` is (R, n); returns (R,).

    The bootstrap calls this with one row of resampling counts per replicate.
    """
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    one_hot = np.zeros((scores.size, n_bins))
    one_hot[np.arange(scores.size), _bin_index(scores, n_bins)] = 1.0
    counts = weights @ one_hot
    score_sums = (weights * scores) @ one_hot
    fake_sums = (weights * labels) @ one_hot
    gaps = np.abs(fake_sums - score_sums)  # = counts * |fraction fake - mean score|
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, gaps.sum(axis=1) / totals, np.nan)
