"""Binary detection metrics, computed with scikit-learn.

Accuracy is reported only at the model's own calibrated threshold: accuracy at the best
threshold chosen on the test set (an oracle) is not achievable and is never reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

FPR_POINTS: tuple[float, ...] = (0.01, 0.05)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr_target: float) -> float:
    """The highest TPR whose FPR does not exceed ``fpr_target`` on the ROC curve.

    Every threshold is kept (``drop_intermediate=False``): scikit-learn otherwise drops
    collinear ROC points, one of which may be the best point under the target FPR.
    """
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    allowed = fpr <= fpr_target + 1e-12
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float | None = None
) -> dict[str, Any]:
    """AP, ROC-AUC, TPR at 1 % / 5 % FPR, and accuracy/TPR/FPR at ``threshold``."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n_fake = int(labels.sum())
    n_real = int(labels.size - n_fake)
    result: dict[str, Any] = {"n_real": n_real, "n_fake": n_fake}
    both = n_real > 0 and n_fake > 0
    result["ap"] = float(average_precision_score(labels, scores)) if both else None
    result["roc_auc"] = float(roc_auc_score(labels, scores)) if both else None
    for point in FPR_POINTS:
        key = f"tpr_at_fpr_{round(point * 100)}"
        result[key] = tpr_at_fpr(labels, scores, point) if both else None
    if threshold is not None:
        predicted = scores >= threshold
        result["threshold"] = float(threshold)
        result["accuracy"] = (
            float(np.mean(predicted == labels.astype(bool))) if labels.size else None
        )
        result["tpr"] = float(predicted[labels == 1].mean()) if n_fake else None
        result["fpr"] = float(predicted[labels == 0].mean()) if n_real else None
    return result
