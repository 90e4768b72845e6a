"""Decision thresholds calibrated to a target false-positive rate on held-out real images.

A fixed 0.5 means nothing on data the detector was not trained on. Instead, the threshold is the
score that at most ``target_fpr`` of held-out *real* images reach. A second, lower threshold at
``review_fpr`` marks the band in which a score is worth a human look: scores at or above the
decision threshold are ``fake``, scores in the review band ``uncertain``, the rest ``real``.

With ``n`` calibration images, FPRs below ``1/n`` cannot be resolved; the calibration says so
in ``warnings`` instead of pretending.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fakescope.results import Verdict


def threshold_at_fpr(real_scores: np.ndarray, target_fpr: float) -> float:
    """The smallest threshold t with ``mean(real_scores >= t) <= target_fpr``."""
    scores = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("calibration needs at least one real score")
    if not 0.0 <= target_fpr < 1.0:
        raise ValueError(f"target FPR must be in [0, 1), got {target_fpr}")
    allowed = int(np.floor(target_fpr * scores.size + 1e-9))
    # Scores tied with the first one that must stay below would be flagged too, so step past it.
    return float(np.nextafter(scores[allowed], np.inf))


@dataclass(frozen=True)
class ThresholdCalibration:
    """Thresholds and how they were obtained; stored as ``calibration.json`` with a model."""

    threshold: float
    target_fpr: float
    review_threshold: float
    review_fpr: float
    n_calibration: int
    calibration_fpr: float  # the FPR the threshold actually gives on the calibration images
    warnings: list[str] = field(default_factory=list)

    def verdict(self, score: float) -> Verdict:
        if score >= self.threshold:
            return "fake"
        if score >= self.review_threshold:
            return "uncertain"
        return "real"

    def verdicts(self, scores: np.ndarray) -> list[Verdict]:
        return [self.verdict(float(s)) for s in scores]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdCalibration:
        """Rebuild from ``to_dict`` output; raises ValueError on missing or non-numeric values."""
        numbers = ("threshold", "target_fpr", "review_threshold", "review_fpr", "calibration_fpr")
        for key in numbers:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"calibration {key!r} must be a number, got {value!r}")
            if not np.isfinite(value):
                raise ValueError(f"calibration {key!r} must be finite, got {value!r}")
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def calibrate_threshold(
    real_scores: np.ndarray, target_fpr: float = 0.05, review_fpr: float = 0.20
) -> ThresholdCalibration:
    """Calibrate on scores of held-out real images (never the images the detector fitted)."""
    if review_fpr < target_fpr:
        raise ValueError(f"review FPR {review_fpr} must be at least the target FPR {target_fpr}")
    scores = np.asarray(real_scores, dtype=np.float64)
    threshold = threshold_at_fpr(scores, target_fpr)
    review = min(threshold_at_fpr(scores, review_fpr), threshold)
    notes: list[str] = []
    if scores.size * target_fpr < 1.0:
        notes.append(
            f"only {scores.size} calibration images: an FPR of {target_fpr:.3g} cannot be resolved "
            f"(resolution 1/{scores.size}); the threshold is above every calibration score"
        )
    if threshold > 1.0:
        notes.append("the threshold is above 1: no image can be called fake at this FPR")
    return ThresholdCalibration(
        threshold=threshold,
        target_fpr=target_fpr,
        review_threshold=review,
        review_fpr=review_fpr,
        n_calibration=int(scores.size),
        calibration_fpr=float(np.mean(scores >= threshold)),
        warnings=notes,
    )
