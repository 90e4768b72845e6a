"""From scores to decisions: thresholds calibrated on held-out real images."""

from fakescope.calibration.threshold import ThresholdCalibration, calibrate_threshold

__all__ = ["ThresholdCalibration", "calibrate_threshold"]
