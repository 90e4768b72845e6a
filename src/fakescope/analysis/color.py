"""How much each detector's scores depend on colour (Chandrasegaran et al., ECCV 2022).

"Discovering Transferable Forensic Features for CNN-generated Images Detection" found that the
features universal detectors rely on are largely colour-conditional: turning images grey drops
their detection of fakes sharply. This module measures it for any detector: every image of the
analysis set (both classes alike) is turned grey (ITU-R 601 luma in all three channels) or has
its hue rotated by 90 and 180 degrees (HSV, saturation and value unchanged), through the
perturbation suite's own colour operations, and the scores are compared with the clean ones.

Reported per detector and transform: mean absolute score change on reals and on fakes, the
mean signed change on fakes (negative: fakes look more real), the verdict flip rate at the
detector's threshold, and ROC-AUC before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fakescope.data.perturb import ColorJitter, Grayscale
from fakescope.evaluation.metrics import binary_metrics

_NEUTRAL = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0}


def grayscale(pixels: np.ndarray) -> np.ndarray:
    return Grayscale().apply(pixels, {})


def hue_rotation(fraction: float) -> Callable[[np.ndarray], np.ndarray]:
    """Rotate the hue by ``fraction`` of the circle (0.25 = 90 degrees)."""

    def rotate(pixels: np.ndarray) -> np.ndarray:
        return ColorJitter().apply(pixels, {**_NEUTRAL, "hue": fraction})

    return rotate


COLOR_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "grayscale": grayscale,
    "hue+90deg": hue_rotation(0.25),
    "hue+180deg": hue_rotation(0.5),
}


def color_sensitivity(
    clean: dict[str, np.ndarray],
    transformed: dict[str, dict[str, np.ndarray]],
    labels: np.ndarray,
    thresholds: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """``clean[detector]`` and ``transformed[transform][detector]`` scores -> the table."""
    labels = np.asarray(labels)
    real, fake = labels == 0, labels == 1
    result: dict[str, dict[str, Any]] = {}
    for detector, before in clean.items():
        rows: dict[str, Any] = {"auc_clean": binary_metrics(labels, before)["roc_auc"]}
        for name, scores in transformed.items():
            after = scores[detector]
            change = after - before
            threshold = thresholds[detector]
            flips = (after >= threshold) != (before >= threshold)
            rows[name] = {
                "mean_abs_change_real": float(np.abs(change[real]).mean()) if real.any() else None,
                "mean_abs_change_fake": float(np.abs(change[fake]).mean()) if fake.any() else None,
                "mean_change_fake": float(change[fake].mean()) if fake.any() else None,
                "flip_rate": float(flips.mean()),
                "auc": binary_metrics(labels, after)["roc_auc"],
            }
        result[detector] = rows
    return result
