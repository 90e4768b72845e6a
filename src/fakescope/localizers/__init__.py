"""Localization methods: where an image was changed (one folder per method).

The registry maps names to ``module:Class`` strings imported only when used, like the detector
registry; third-party packages add methods through the ``fakescope.localizers`` entry-point
group. Bundled trained localizers live in ``fakescope/models/localization/<name>/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fakescope.errors import ModelError
from fakescope.localizers.base import Localizer, read_localizer_config
from fakescope.registry import LazyRegistry

_BUILTIN: dict[str, str] = {
    "patch-scan": "fakescope.localizers.patch_scan.localizer:PatchScanLocalizer",
    "segmentation": "fakescope.localizers.segmentation.localizer:SegmentationLocalizer",
    "one-class": "fakescope.localizers.one_class.localizer:OneClassLocalizer",
    "copy-move": "fakescope.localizers.copy_move.localizer:CopyMoveLocalizer",
    "warp-flow": "fakescope.localizers.warp_flow.localizer:WarpFlowLocalizer",
}
_registry: LazyRegistry[Localizer] = LazyRegistry(
    "localizer", Localizer, "fakescope.localizers", _BUILTIN
)
#: The bundled localizer ``fakescope localize`` uses when none is named.
DEFAULT_LOCALIZER = "segmentation-default"
#: The bundled localizer for photos from the field, where false alarms cost most (the server's
#: edits overlay): trained with hard negatives, it flags far fewer untouched photos unlike the
#: benchmark's, and finds somewhat less (its README and the localization model card).
FIELD_LOCALIZER = "segmentation-field"


def register(name: str, target: str) -> None:
    """Register ``target`` (``"package.module:ClassName"``) under ``name``."""
    _registry.register(name, target)


def list_localizers() -> list[str]:
    return _registry.names()


def get_localizer_class(name: str) -> type[Localizer]:
    return _registry.get(name)


def create(name: str, **params: Any) -> Localizer:
    """A new localizer ``name``; invalid hyper-parameters raise ValueError here."""
    localizer = get_localizer_class(name)(**params)
    localizer.check_params()
    return localizer


def bundled_localizers_dir() -> Path:
    return Path(str(files("fakescope.models"))) / "localization"


def list_bundled_localizers() -> list[str]:
    root = bundled_localizers_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def resolve_localizer(name_or_dir: str | Path) -> Path:
    """A folder path is used as is; otherwise the name of a bundled localizer."""
    candidate = Path(name_or_dir)
    if candidate.is_dir():
        return candidate
    if str(name_or_dir) in list_bundled_localizers():
        return bundled_localizers_dir() / str(name_or_dir)
    known = ", ".join(list_bundled_localizers()) or "none"
    raise ModelError(
        f"{name_or_dir!r} is neither a localizer folder nor a bundled localizer ({known})"
    )


def load_localizer(name_or_dir: str | Path = DEFAULT_LOCALIZER) -> Localizer:
    """Load a saved localizer (folder or bundled name), dispatching on its ``config.json``."""
    directory = resolve_localizer(name_or_dir)
    config = read_localizer_config(directory)
    try:
        cls = get_localizer_class(config["localizer"])
    except KeyError as exc:
        raise ModelError(str(exc)) from exc
    return cls.load(directory)


__all__ = [
    "DEFAULT_LOCALIZER",
    "FIELD_LOCALIZER",
    "Localizer",
    "create",
    "get_localizer_class",
    "list_bundled_localizers",
    "list_localizers",
    "load_localizer",
    "register",
    "resolve_localizer",
]
