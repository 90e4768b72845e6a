"""Scoring images with a calibrated model, every member of a fusion included, with a disk cache.

A report scores the same images many times (clean, under each perturbation, on the debiased
copy), and a rerun that adds one section should not score everything again. Scores are cached
per *model fingerprint* (SHA-256 of every file in the model folder) and *condition* (``clean``,
or a perturbation spec with its seed), keyed per image by path, size and modification time.
Files are ``.npz`` of plain arrays (no pickles) under ``$FAKESCOPE_CACHE/eval-scores`` (else
``~/.cache/fakescope/eval-scores``).

For a fusion model the member scores are cached and the fused score is recomputed from them, so
every member's own score is available to the report for free.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fakescope.calibration.model import CalibratedModel
from fakescope.detectors import Detector

CACHE_ENV_VAR = "FAKESCOPE_CACHE"
MODEL_COLUMN = "model"


def default_cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV_VAR)
    root = Path(base) if base else Path.home() / ".cache" / "fakescope"
    return root / "eval-scores"


def fingerprint_folder(folder: Path | None) -> str:
    """SHA-256 over the relative paths and bytes of every file in ``folder`` (sorted)."""
    digest = hashlib.sha256()
    if folder is None:
        return "in-memory"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class ScoreCache:
    """Per (model, condition) arrays of scores keyed by image key; atomic writes."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _path(self, fingerprint: str, condition: str) -> Path | None:
        if self.directory is None:
            return None
        name = hashlib.sha256(condition.encode()).hexdigest()[:24]
        return self.directory / fingerprint[:24] / f"{name}.npz"

    def load(self, fingerprint: str, condition: str, n_columns: int) -> dict[str, np.ndarray]:
        path = self._path(fingerprint, condition)
        if path is None or not path.is_file():
            return {}
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys, scores = archive["keys"], archive["scores"]
        except (OSError, ValueError, KeyError):
            return {}  # a damaged cache file only costs a rescore
        if scores.ndim != 2 or scores.shape[1] != n_columns:
            return {}
        return {str(key): row for key, row in zip(keys.tolist(), scores, strict=True)}

    def store(
        self, fingerprint: str, condition: str, known: dict[str, np.ndarray], n_columns: int
    ) -> None:
        path = self._path(fingerprint, condition)
        if path is None or not known:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(known), dtype=str)
        scores = np.stack(list(known.values())).reshape(len(known), n_columns)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, keys=keys, scores=scores)
        temporary.replace(path)


@dataclass(frozen=True)
class ScoreTable:
    """Scores of one set of images: ``columns[0]`` is the model, then each fusion member."""

    columns: tuple[str, ...]
    values: np.ndarray  # (n, len(columns))

    def column(self, name: str = MODEL_COLUMN) -> np.ndarray:
        return self.values[:, self.columns.index(name)]


class ModelScorer:
    """Scores images with a calibrated model and, for a fusion, with each member."""

    def __init__(
        self,
        model: CalibratedModel,
        model_dir: Path | None,
        cache: ScoreCache | None = None,
        label: str | None = None,
    ) -> None:
        self.model = model
        self.model_dir = model_dir
        self.cache = cache or ScoreCache(None)
        self.label = label or model.name
        self.fingerprint = fingerprint_folder(model_dir)
        detector = model.detector
        self._fused = hasattr(detector, "member_scores") and hasattr(detector, "fuse_scores")
        self.members: dict[str, Detector] = (
            dict(detector._fitted_members()) if self._fused else {}  # type: ignore[attr-defined]
        )

    @property
    def threshold(self) -> float:
        return float(self.model.calibration.threshold)

    @property
    def columns(self) -> tuple[str, ...]:
        return (MODEL_COLUMN, *self.members)

    def _compute(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.empty((0, len(self.columns)))
        if self._fused:
            member = np.asarray(self.model.detector.member_scores(images), dtype=np.float64)  # type: ignore[attr-defined]
            fused = np.asarray(self.model.detector.fuse_scores(member), dtype=np.float64)  # type: ignore[attr-defined]
            return np.column_stack([fused, member])
        return self.model.score(images).reshape(-1, 1)

    def score(
        self,
        images: Sequence[np.ndarray] | Callable[[list[int]], list[np.ndarray]],
        keys: Sequence[str] | None = None,
        condition: str = "clean",
        batch_size: int = 64,
        on_progress: Callable[[int], None] | None = None,
    ) -> ScoreTable:
        """Scores for ``images`` (a list, or a function that makes the images of some indices,
        so that perturbed copies of cached images are never computed); cached when ``keys``
        are given."""
        n = len(keys) if keys is not None else len(images)  # type: ignore[arg-type]
        n_columns = len(self.columns)
        values = np.empty((n, n_columns), dtype=np.float64)
        known = self.cache.load(self.fingerprint, condition, n_columns) if keys else {}
        missing = [i for i in range(n) if keys is None or keys[i] not in known]
        for i in range(n):
            if keys is not None and keys[i] in known:
                values[i] = known[keys[i]]
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            batch = images(chunk) if callable(images) else [images[i] for i in chunk]
            values[chunk] = self._compute(batch)
            if on_progress is not None:
                on_progress(len(chunk))
        if keys is not None and missing:
            known.update({keys[i]: values[i] for i in missing})
            self.cache.store(self.fingerprint, condition, known, n_columns)
        return ScoreTable(self.columns, values)
