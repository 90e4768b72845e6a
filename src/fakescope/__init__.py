"""fakescope: tell whether an image was generated or manipulated by AI, and where.

The package is laid out in the order data flows through it:

- ``fakescope.io``: safe decoding of untrusted files and discovery of inputs;
- ``fakescope.features``: signal-level features (spectra, ...);
- ``fakescope.detectors``: estimators with ``fit`` / ``predict_proba`` and a lazy registry;
- ``fakescope.calibration``: decision thresholds and calibrated models;
- ``fakescope.evaluation``: metrics for honest evaluation;
- ``fakescope.pipeline``: scanning files into :class:`~fakescope.results.ScanResult` rows;
- ``fakescope.cli``: the command-line interface.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fakescope")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
