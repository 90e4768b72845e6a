"""The detector registry: names map to ``module:Class`` strings, imported only when used.

Third-party packages can add detectors through the ``fakescope.detectors`` entry-point group,
with the same ``module:Class`` value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakescope.detectors.base import Detector, read_config
from fakescope.errors import ModelError
from fakescope.registry import LazyRegistry

_BUILTIN: dict[str, str] = {
    "spectral": "fakescope.detectors.spectral.detector:SpectralDetector",
    "npr": "fakescope.detectors.npr.detector:NPRDetector",
    "frequency": "fakescope.detectors.frequency.detector:FrequencyDetector",
    "fusion": "fakescope.fusion.stacking:FusedDetector",
    "clip-probe": "fakescope.detectors.clip_probe.detector:ClipProbeDetector",
    "universal-cnn": "fakescope.detectors.universal_cnn.detector:UniversalCNNDetector",
}
_registry: LazyRegistry[Detector] = LazyRegistry(
    "detector", Detector, "fakescope.detectors", _BUILTIN
)


def register(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:ClassName"``) under ``name``."""
    _registry.register(name, target)


def list_detectors() -> list[str]:
    """Every registered detector name, sorted."""
    return _registry.names()


def get_detector_class(name: str) -> type[Detector]:
    """Import and return the class registered as ``name``."""
    return _registry.get(name)


def create(name: str, **params: Any) -> Detector:
    """A new, unfitted detector ``name``; invalid hyper-parameters raise ValueError here."""
    detector = get_detector_class(name)(**params)
    detector.check_params()
    return detector


def load_detector(directory: str | Path) -> Detector:
    """Load whichever detector ``directory`` holds, dispatching on its ``config.json``."""
    config = read_config(directory)
    try:
        cls = get_detector_class(config["detector"])
    except KeyError as exc:
        raise ModelError(str(exc)) from exc
    return cls.load(directory)


__all__ = [
    "Detector",
    "create",
    "get_detector_class",
    "list_detectors",
    "load_detector",
    "register",
]
