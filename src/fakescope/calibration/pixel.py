"""Thresholds for heat maps: the one that maximises pixel F1 over all images.

Per-image F1 follows the convention of :mod:`fakescope.evaluation.localization`: on a pristine
image (empty ground truth) F1 is 1 when nothing is flagged and 0 otherwise, so a threshold that
paints every photo is punished on the pristine ones, not ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Candidate thresholds searched by :func:`best_f1_threshold`.
CANDIDATES = np.round(np.arange(0.05, 0.96, 0.025), 3)


def image_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Pixel F1 of one image; 1 or 0 on a pristine image (see the module docstring)."""
    true_positive = np.count_nonzero(predicted & truth)
    positives = np.count_nonzero(predicted) + np.count_nonzero(truth)
    if np.count_nonzero(truth) == 0:
        return 1.0 if np.count_nonzero(predicted) == 0 else 0.0
    return 2.0 * true_positive / positives


def best_f1_threshold(
    heatmaps: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    candidates: np.ndarray = CANDIDATES,
) -> float:
    """The candidate threshold with the highest mean per-image F1 (ties: the lowest)."""
    if len(heatmaps) != len(masks) or not heatmaps:
        raise ValueError("need one mask per heat map, and at least one of each")
    truths = [
        np.zeros(h.shape, dtype=bool) if m is None else np.asarray(m, dtype=bool)
        for h, m in zip(heatmaps, masks, strict=True)
    ]
    means = [
        np.mean([image_f1(h >= t, m) for h, m in zip(heatmaps, truths, strict=True)])
        for t in candidates
    ]
    return float(candidates[int(np.argmax(means))])
