"""95 % bootstrap confidence intervals for every detection metric, resampling photos.

Tiles cut from one photo, and the fakes made from it, are not independent samples: a detector
that fails on one photo tends to fail on all its tiles. Resampling *images* would then give
intervals that are too narrow. So the bootstrap resamples **clusters** (``photo_id``s; an image
without one is its own cluster) with replacement, stratified by what a cluster holds (reals
only, fakes only, both) so that every replicate keeps both classes. A replicate weights each
image by how often its cluster was drawn, and the metrics are computed with those weights.

Intervals are percentile intervals over ``n_resamples`` replicates (1,000 by default). The point
estimates are scikit-learn's (:func:`fakescope.evaluation.metrics.binary_metrics`); the
replicates use a vectorised implementation of the same definitions (scikit-learn's step-wise
average precision, trapezoidal ROC-AUC, the best TPR at an FPR no higher than the target), which
runs all replicates in a few matrix operations instead of a thousand calls per metric; a test
checks it against scikit-learn with the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fakescope.evaluation.calibration_error import (
    expected_calibration_error,
    expected_calibration_error_batch,
)
from fakescope.evaluation.metrics import FPR_POINTS, binary_metrics

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
#: Metrics that get an interval, in report order (threshold metrics only with a threshold).
RANKING_METRICS = ("ap", "roc_auc", *(f"tpr_at_fpr_{round(p * 100)}" for p in FPR_POINTS))
THRESHOLD_METRICS = ("accuracy", "tpr", "fpr")


@dataclass(frozen=True)
class BootstrapConfig:
    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_resamples < 0:
            raise ValueError(f"n_resamples must be non-negative, got {self.n_resamples}")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")


def cluster_weights(
    labels: np.ndarray, clusters: Sequence[str] | None, n_resamples: int, seed: int
) -> np.ndarray:
    """(R, n) resampling weights: how often each image's cluster was drawn in each replicate.

    Clusters are drawn with replacement within three strata (reals only, fakes only, mixed),
    each stratum keeping its number of clusters.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.size
    if clusters is None:
        codes = np.arange(n)
    else:
        _, codes = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    n_clusters = int(codes.max()) + 1 if n else 0
    fakes = np.bincount(codes, weights=labels, minlength=n_clusters)
    reals = np.bincount(codes, weights=1 - labels, minlength=n_clusters)
    stratum = (fakes > 0).astype(np.int64) + 2 * (reals > 0)
    rng = np.random.default_rng(seed)
    draws = np.zeros((n_resamples, n_clusters))
    for value in np.unique(stratum):
        members = np.flatnonzero(stratum == value)
        # Drawing k clusters with replacement = multinomial counts over the k clusters.
        uniform = np.full(members.size, 1.0 / members.size)
        draws[:, members] = rng.multinomial(members.size, uniform, size=n_resamples)
    return draws[:, codes]


def weighted_metrics_batch(
    labels: np.ndarray,
    scores: np.ndarray,
    weights: np.ndarray,
    threshold: float | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of :data:`RANKING_METRICS` (and :data:`THRESHOLD_METRICS`, ECE) per row of
    ``weights`` (R, n); NaN where a replicate lacks a class."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    positives = labels[order]
    w = weights[:, order]
    # The last position of each run of tied scores: one ROC point per distinct threshold.
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), scores.size - 1]
    tps = np.cumsum(w * positives, axis=1)[:, last]
    fps = np.cumsum(w * (1.0 - positives), axis=1)[:, last]
    total_pos, total_neg = tps[:, -1:], fps[:, -1:]
    valid = (total_pos[:, 0] > 0) & (total_neg[:, 0] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.hstack([np.zeros((len(w), 1)), tps / total_pos])
        fpr = np.hstack([np.zeros((len(w), 1)), fps / total_neg])
        precision = np.nan_to_num(tps / (tps + fps))
        recall = tps / total_pos
    result: dict[str, np.ndarray] = {}
    recall_steps = np.diff(np.hstack([np.zeros((len(w), 1)), recall]), axis=1)
    result["ap"] = np.where(valid, np.sum(recall_steps * precision, axis=1), np.nan)
    result["roc_auc"] = np.where(valid, np.trapezoid(tpr, fpr, axis=1), np.nan)
    for point in FPR_POINTS:
        allowed = fpr <= point + 1e-12
        best = np.max(np.where(allowed, tpr, 0.0), axis=1)
        result[f"tpr_at_fpr_{round(point * 100)}"] = np.where(valid, best, np.nan)
    if threshold is not None:
        predicted = (scores >= threshold).astype(np.float64)
        correct = (predicted == labels).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            result["accuracy"] = weights @ correct / weights.sum(axis=1)
            result["tpr"] = weights @ (predicted * labels) / (weights @ labels)
            result["fpr"] = weights @ (predicted * (1 - labels)) / (weights @ (1 - labels))
    result["ece"] = expected_calibration_error_batch(labels, scores, weights)
    return result


def metrics_with_intervals(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
    clusters: Sequence[str] | None = None,
    config: BootstrapConfig | None = None,
) -> dict[str, Any]:
    """:func:`binary_metrics` plus ``ece`` and ``ci``: {metric: [low, high]} (None when a class
    is missing or no replicate was valid)."""
    config = config or BootstrapConfig()
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    result = binary_metrics(labels, scores, threshold)
    result["ece"] = expected_calibration_error(labels, scores) if labels.size else None
    names = [*RANKING_METRICS, *(THRESHOLD_METRICS if threshold is not None else ()), "ece"]
    intervals: dict[str, list[float] | None] = dict.fromkeys(names)
    both = result["n_real"] > 0 and result["n_fake"] > 0
    if both and config.n_resamples > 0:
        weights = cluster_weights(labels, clusters, config.n_resamples, config.seed)
        replicates = weighted_metrics_batch(labels, scores, weights, threshold)
        tail = (1.0 - config.confidence) / 2 * 100
        for name in names:
            values = replicates[name][np.isfinite(replicates[name])]
            if values.size:
                low, high = np.percentile(values, [tail, 100 - tail])
                intervals[name] = [float(low), float(high)]
    result["ci"] = intervals
    result["n_clusters"] = len(set(clusters)) if clusters is not None else int(labels.size)
    return result
