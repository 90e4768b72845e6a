"""Thresholds for heat maps: the one that maximises pixel F1 over all images.

Per-image F1 follows the convention of :mod:`fakescope.evaluation.localization`: on a pristine
image (empty ground truth) F1 is 1 when nothing is flagged and 0 otherwise, so a threshold that
paints every photo is punished on the pristine ones, not ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Candidate thresholds searched by :func:`best_f1_threshold`.
# Finer near 1: a network trained with BCE saturates, and its best cut can sit above 0.95.
CANDIDATES = np.round(np.concatenate([np.arange(0.05, 0.96, 0.025), [0.97, 0.98, 0.99]]), 3)


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


def best_f1_thresholds(
    heatmaps: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    scores: Sequence[float],
    candidates: np.ndarray = CANDIDATES,
) -> tuple[float, float]:
    """The (pixel, image) threshold pair with the highest mean per-image F1 (detect, then
    localize: an image whose score is below the image threshold gets an empty mask).

    Image candidates are the pixel candidates plus every observed score, so the cut can fall
    between any two images. Ties go to the lowest pixel threshold, then the lowest image one.
    """
    if not (len(heatmaps) == len(masks) == len(scores)) or not heatmaps:
        raise ValueError("need one mask and one score per heat map, and at least one of each")
    truths = [
        np.zeros(h.shape, dtype=bool) if m is None else np.asarray(m, dtype=bool)
        for h, m in zip(heatmaps, masks, strict=True)
    ]
    pristine = np.array([not t.any() for t in truths])
    # f1[i, j]: image j's F1 when its mask is kept at pixel threshold i.
    f1 = np.array(
        [[image_f1(h >= t, m) for h, m in zip(heatmaps, truths, strict=True)] for t in candidates]
    )
    score_array = np.asarray(scores, dtype=np.float64)
    image_candidates = np.unique(np.concatenate([candidates, score_array, [np.inf]]))
    # An image below the image threshold has an empty mask: F1 1 if pristine, else 0.
    gated = pristine.astype(np.float64)
    best, best_pair = -1.0, (float(candidates[0]), float(image_candidates[0]))
    for image_threshold in image_candidates:
        kept = score_array >= image_threshold
        means = np.where(kept[None, :], f1, gated[None, :]).mean(axis=1)
        index = int(np.argmax(means))
        if means[index] > best + 1e-12:
            best, best_pair = (
                float(means[index]),
                (float(candidates[index]), float(image_threshold)),
            )
    pixel, image = best_pair
    return pixel, (image if np.isfinite(image) else 1.0 + 1e-6)
