"""The detectors an analysis looks at: each model, and each member of a fusion model.

Analyses ask "which detector does this defeat?", so every score column matters: a model's own
score (with its calibrated threshold) and, for a fusion, each member's score. Members have no
calibrated threshold of their own; where an analysis needs one it takes the threshold that gives
5 % FPR on the clean real images of the analysis set, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fakescope.calibration.threshold import threshold_at_fpr
from fakescope.detectors import Detector
from fakescope.evaluation.scoring import MODEL_COLUMN, ModelScorer

MEMBER_TARGET_FPR = 0.05


@dataclass(frozen=True)
class PanelDetector:
    name: str  # "model" label, or "model/member"
    detector: Detector
    calibrated_threshold: float | None  # None for members


class DetectorPanel:
    """Scores images with every model and member at once."""

    def __init__(self, scorers: Sequence[ModelScorer]) -> None:
        self.scorers = list(scorers)
        self.detectors: list[PanelDetector] = []
        for scorer in self.scorers:
            self.detectors.append(
                PanelDetector(scorer.label, scorer.model.detector, scorer.threshold)
            )
            for member, detector in scorer.members.items():
                self.detectors.append(PanelDetector(f"{scorer.label}/{member}", detector, None))

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.detectors]

    def score(
        self,
        images: Sequence[np.ndarray],
        keys: Sequence[str] | None = None,
        condition: str = "clean",
    ) -> dict[str, np.ndarray]:
        """{detector name: scores}; cached per model when ``keys`` are given."""
        result: dict[str, np.ndarray] = {}
        for scorer in self.scorers:
            table = scorer.score(images, keys, condition)
            for column in table.columns:
                name = scorer.label if column == MODEL_COLUMN else f"{scorer.label}/{column}"
                result[name] = table.column(column)
        return result

    def thresholds(self, clean_real_scores: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
        """The threshold each detector is judged at, and where it comes from."""
        result = {}
        for entry in self.detectors:
            if entry.calibrated_threshold is not None:
                result[entry.name] = {
                    "threshold": entry.calibrated_threshold,
                    "source": "calibrated",
                }
            else:
                reals = clean_real_scores[entry.name]
                result[entry.name] = {
                    "threshold": threshold_at_fpr(reals, MEMBER_TARGET_FPR) if reals.size else 0.5,
                    "source": f"{MEMBER_TARGET_FPR:.0%} FPR on the analysis set's clean reals",
                }
        return result


def differentiable_reason(detector: Detector) -> str | None:
    """None when gradients can flow from the score to the pixels here, else why not."""
    from fakescope.detectors.torch_detector import TorchDetector

    if not isinstance(detector, TorchDetector):
        return (
            f"not differentiable here: {detector.name!r} computes its features outside torch "
            "(numpy FFT, scikit-learn head, or an ONNX encoder)"
        )
    if getattr(detector, "onnx_backend_", None) is not None:
        return "not differentiable here: loaded without torch weights, runs through onnxruntime"
    if getattr(detector, "network_", None) is None:
        return "not differentiable here: the detector has no fitted torch network"
    return None
