"""The detector registry: names map to ``module:Class`` strings, imported only when used.

Third-party packages can add detectors through the ``fakescope.detectors`` entry-point group,
with the same ``module:Class`` value.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fakescope.detectors.base import Detector, read_config
from fakescope.errors import ModelError

_BUILTIN: dict[str, str] = {
    "spectral": "fakescope.detectors.spectral.detector:SpectralDetector",
    "npr": "fakescope.detectors.npr.detector:NPRDetector",
    "frequency": "fakescope.detectors.frequency.detector:FrequencyDetector",
    "fusion": "fakescope.fusion.stacking:FusedDetector",
    "clip-probe": "fakescope.detectors.clip_probe.detector:ClipProbeDetector",
    "universal-cnn": "fakescope.detectors.universal_cnn.detector:UniversalCNNDetector",
}
_registry: dict[str, str] = dict(_BUILTIN)
_entry_points_loaded = False


def register(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:ClassName"``) under ``name``."""
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:ClassName', got {target!r}")
    _registry[name] = target


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    for point in entry_points(group="fakescope.detectors"):
        _registry.setdefault(point.name, point.value)
    _entry_points_loaded = True


def list_detectors() -> list[str]:
    """Every registered detector name, sorted."""
    _load_entry_points()
    return sorted(_registry)


def get_detector_class(name: str) -> type[Detector]:
    """Import and return the class registered as ``name``."""
    _load_entry_points()
    try:
        target = _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry))
        raise KeyError(f"unknown detector {name!r}; registered: {known}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        raise TypeError(f"{target} is not a fakescope Detector")
    return cls


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
