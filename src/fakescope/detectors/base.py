"""The detector contract every detector implements.

A detector is a scikit-learn style estimator over images: ``fit(images, labels)``,
``predict_proba(images)`` (probability of *fake*, one number per image), ``get_params()``, and
``save(dir)`` / ``load(dir)`` that write a JSON config plus weights as ``.npz`` or safetensors,
never pickles. Images are RGB ``uint8`` arrays of shape (H, W, 3); sizes may differ.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.base import BaseEstimator

from fakescope.errors import ModelError
from fakescope.jsonable import to_jsonable

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


class SavedEstimator(BaseEstimator, ABC):
    """What detectors and localizers share: hyper-parameters as ``__init__`` arguments, and
    ``save`` / ``load`` as ``config.json`` plus named arrays (``.npz`` or safetensors).

    ``config_kind`` is the config key naming the class (``"detector"``, ``"localizer"``);
    subclasses add learned values of their own to the config with :meth:`_config_extra` and
    read them back in :meth:`_restore_extra`.
    """

    #: The registry name; set by subclasses.
    name: ClassVar[str] = ""
    #: The config key that names the registered class.
    config_kind: ClassVar[str] = "detector"
    #: How :meth:`save` stores the arrays: ``"npz"`` or ``"safetensors"`` (never pickles).
    weights_format: ClassVar[str] = "npz"
    #: False when a method may have no arrays at all (a missing file then loads as none).
    weights_required: ClassVar[bool] = True

    def check_params(self) -> None:
        """Raise ValueError for invalid hyper-parameters, before any data is touched."""

    @abstractmethod
    def _weights(self) -> dict[str, np.ndarray]:
        """The learned state as named arrays."""

    @abstractmethod
    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`_weights` and :meth:`_state`."""

    def _state(self) -> dict[str, Any]:
        """Learned scalars and strings that belong in the JSON config, not the arrays."""
        return {}

    def _config_extra(self) -> dict[str, Any]:
        """Top-level config entries of the subclass (written between params and state)."""
        return {}

    def _restore_extra(self, config: dict[str, Any]) -> None:
        """Read back what :meth:`_config_extra` wrote."""

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and the weights (``.npz`` or ``.safetensors``) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = self._weights()
        weights_file = f"weights.{self.weights_format}"
        config = {
            "format_version": FORMAT_VERSION,
            self.config_kind: self.name,
            "params": to_jsonable(self.get_params(deep=False)),
            **self._config_extra(),
            "state": to_jsonable(self._state()),
            "weights": weights_file,
        }
        write_weights(directory / weights_file, weights)
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild what :meth:`save` wrote. Arrays load with ``allow_pickle=False``."""
        kind = cls.config_kind
        config = read_config(directory, kind=kind)
        if config[kind] != cls.name:
            raise ModelError(f"{directory} holds a {config[kind]!r} {kind}, not {cls.name!r}")
        try:
            estimator = cls(**config.get("params", {}))
            estimator.check_params()
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{directory}: invalid {kind} parameters: {exc}") from exc
        path = weights_path(directory, config)
        weights = read_weights(path) if cls.weights_required or path.exists() else {}
        estimator._set_weights(weights, config.get("state", {}))
        estimator._restore_extra(config)
        return estimator


class Detector(SavedEstimator):
    """Base class: subclasses declare their hyper-parameters as ``__init__`` arguments.

    ``get_params`` / ``set_params`` come from scikit-learn's ``BaseEstimator``, so detectors
    clone, grid-search and sit in pipelines like any estimator.
    """

    #: Images with a side shorter than this are refused before scoring.
    min_image_side: ClassVar[int] = 1

    @abstractmethod
    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[int],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        """Learn from images with labels 0 (real) and 1 (fake).

        ``on_progress(done, total)`` is called as training advances, by detectors whose
        training takes long enough to be worth a progress bar; others may ignore it.
        """

    @abstractmethod
    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Probability that each image is fake, shape (n,), values in [0, 1]."""

    def explain(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Per-image evidence behind the score. Detectors override this when they can."""
        return [{} for _ in images]

    def predict_with_evidence(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores and evidence together; detectors override it to share work between the two."""
        return self.predict_proba(images), self.explain(images)


def write_weights(path: Path, weights: dict[str, np.ndarray]) -> None:
    """Save named arrays as ``.npz`` or ``.safetensors``, chosen by the file's suffix."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(path))
    else:
        np.savez(path, **weights)


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Load named arrays written by :func:`write_weights`; pickles are never accepted."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import SafetensorError
            from safetensors.numpy import load_file

            try:
                return load_file(str(path))
            except SafetensorError as exc:
                raise ValueError(str(exc)) from exc
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read weights {path}: {exc}") from exc


def read_config(directory: str | Path, kind: str = "detector") -> dict[str, Any]:
    """Read and check the ``config.json`` of a saved ``kind`` (detector, localizer)."""
    path = Path(directory) / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"{directory} is not a {kind} directory: no {CONFIG_FILE}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(config, dict) or kind not in config:
        raise ModelError(f"{path} does not name a {kind}")
    if config.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
        raise ModelError(
            f"{path} was written by a newer fakescope (format {config['format_version']})"
        )
    return config


def weights_path(directory: str | Path, config: dict[str, Any]) -> Path:
    """The weights file a config names, refusing names that point outside its folder."""
    name = str(config.get("weights", "weights.npz"))
    if Path(name).name != name:
        raise ModelError(f"{directory}: weights file {name!r} is not a plain name")
    return Path(directory) / name


def check_images_labels(images: Sequence[np.ndarray], labels: Sequence[int]) -> np.ndarray:
    """Validate ``fit`` inputs; returns labels as an int array of 0/1."""
    label_array = np.asarray(labels, dtype=np.int64).ravel()
    if len(images) != label_array.size:
        raise ValueError(f"{len(images)} images but {label_array.size} labels")
    if not np.isin(label_array, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if np.unique(label_array).size < 2:
        raise ValueError("fit needs at least one real (0) and one fake (1) image")
    return label_array
