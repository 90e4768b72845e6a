"""A calibrated model: a fitted detector plus its thresholds, saved together in one folder.

Layout of a model folder::

    config.json        the detector's hyper-parameters and learned scalars
    weights.npz        the detector's arrays (or weights.safetensors)
    calibration.json   thresholds, how they were calibrated
    model.json         name, training data summary, validation metrics (optional)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.calibration.threshold import ThresholdCalibration
from fakescope.detectors import Detector, load_detector
from fakescope.errors import ModelError
from fakescope.results import Verdict

CALIBRATION_FILE = "calibration.json"
MODEL_FILE = "model.json"


@dataclass
class CalibratedModel:
    detector: Detector
    calibration: ThresholdCalibration
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.info.get("name") or self.detector.name)

    def score(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self.detector.predict_proba(images), dtype=np.float64)

    def verdicts(self, scores: np.ndarray) -> list[Verdict]:
        return self.calibration.verdicts(scores)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        self.detector.save(directory)
        (directory / CALIBRATION_FILE).write_text(
            json.dumps(self.calibration.to_dict(), indent=2) + "\n"
        )
        (directory / MODEL_FILE).write_text(json.dumps(self.info, indent=2, default=str) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> CalibratedModel:
        directory = Path(directory)
        if not directory.is_dir():
            raise ModelError(f"model folder {directory} does not exist")
        detector = load_detector(directory)
        calibration_path = directory / CALIBRATION_FILE
        if not calibration_path.exists():
            raise ModelError(
                f"{directory} has a detector but no {CALIBRATION_FILE}: an uncalibrated detector "
                "has no meaningful threshold; train it with `fakescope train`, which calibrates it"
            )
        try:
            calibration = ThresholdCalibration.from_dict(json.loads(calibration_path.read_text()))
            info_path = directory / MODEL_FILE
            info = json.loads(info_path.read_text()) if info_path.exists() else {}
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(f"cannot read calibration of {directory}: {exc}") from exc
        return cls(detector=detector, calibration=calibration, info=info)
