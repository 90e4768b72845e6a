"""Models bundled with the package, addressable by name (``--model spectral-default``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from fakescope.errors import ModelError

if TYPE_CHECKING:  # the model stack (scikit-learn) loads only when a model does
    from fakescope.calibration.model import CalibratedModel

DEFAULT_MODEL = "universal-cnn-default"


def bundled_models_dir() -> Path:
    return Path(str(files("fakescope.models")))


def list_bundled_models() -> list[str]:
    root = bundled_models_dir()
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def resolve_model_dir(name_or_dir: str | Path) -> Path:
    """A folder path is used as is; otherwise the name of a bundled model."""
    candidate = Path(name_or_dir)
    if candidate.is_dir():
        return candidate
    bundled = bundled_models_dir() / str(name_or_dir)
    if str(name_or_dir) in list_bundled_models():
        return bundled
    known = ", ".join(list_bundled_models()) or "none"
    raise ModelError(f"{name_or_dir!r} is neither a model folder nor a bundled model ({known})")


def load_model(name_or_dir: str | Path = DEFAULT_MODEL) -> CalibratedModel:
    from fakescope.calibration.model import CalibratedModel

    return CalibratedModel.load(resolve_model_dir(name_or_dir))
