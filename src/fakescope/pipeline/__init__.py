"""End-to-end flows that join decoding, detectors and calibration: scan, train, evaluate."""
