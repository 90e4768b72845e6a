"""Training a detector and calibrating its threshold on held-out real images.

The dataset is split once, stratified by class and grouped by ``photo_id`` so that tiles of one
photo never sit on both sides (a splice also pulls its donor photo onto its side). The detector
fits the training part only. The held-out part gives the threshold (from its reals) and the
validation metrics (from both classes), so neither is measured on images the detector has seen.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from fakescope import __version__
from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import calibrate_threshold
from fakescope.data.layout import LabelledItem, discover_dataset, linked_photo_groups
from fakescope.detectors import Detector, create, get_detector_class
from fakescope.errors import InputError
from fakescope.pipeline.dataset import ProgressCallback, decode_items, describe_errors
from fakescope.pipeline.evaluate import grouped_metrics

#: ``on_train_progress(step, total)``: the detector's own training progress.
FitProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainingConfig:
    detector: str
    params: dict[str, Any]
    target_fpr: float = 0.05
    review_fpr: float = 0.20
    holdout: float = 0.3
    seed: int = 0
    name: str | None = None


def split_holdout(
    items: list[LabelledItem], holdout: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out): about ``holdout`` of the data, stratified by label.

    Grouped by ``photo_id`` across classes: a real tile and the fakes made from that photo
    always land on the same side, so the held-out part never shares content with training.
    Photos an item carries besides its own (``related_photo_ids``: a splice's donor) join its
    group, transitively, so the donor's tiles cannot sit on the other side of the splice.
    """
    if not 0.05 <= holdout <= 0.5:
        raise ValueError(f"holdout fraction must be in [0.05, 0.5], got {holdout}")
    labels = np.array([item.label for item in items])
    groups = np.array(linked_photo_groups(items))
    n_groups = len(set(groups.tolist()))
    n_splits = min(max(2, round(1 / holdout)), n_groups)
    if n_splits < 2:
        raise InputError(
            f"need at least 2 distinct photos to hold some out, have {n_groups} "
            "(photos linked by splices count as one)"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train, held = next(splitter.split(np.zeros(len(items)), labels, groups))
    for name, part in (("training", train), ("held-out", held)):
        if len(set(labels[part].tolist())) < 2:
            raise InputError(
                f"the {name} part has only one class; add photos of each class "
                f"({n_groups} groups of linked photos, so that no photo is on both sides)"
            )
    return np.sort(train), np.sort(held)


def _recorded_path(path: str | Path) -> str:
    """Paths as the user gave them, but never absolute: model files must not leak a machine."""
    path = Path(path)
    return path.name if path.is_absolute() else path.as_posix()


def seeded_params(detector: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """``params`` plus ``random_state=seed`` for a detector that takes one and was not given one.

    One ``--seed`` then fixes the split *and* the fit (a torch detector's initialisation, crops
    and augmentation; a fusion's stacking split and its members).
    """
    if "random_state" in params:
        return dict(params)
    if "random_state" not in get_detector_class(detector)._get_param_names():
        return dict(params)
    return {**params, "random_state": seed}


def _fit_kwargs(
    detector: Detector, train_items: list[LabelledItem], on_train_progress: FitProgress | None
) -> dict[str, Any]:
    """Keyword arguments for ``detector.fit`` beyond images and labels.

    Detectors that split their training images again (a fusion stacks on a held-out part)
    declare a ``groups`` argument; they get the same photo groups as the holdout split, so
    tiles of one photo stay on one side there too.
    """
    parameters = inspect.signature(detector.fit).parameters
    kwargs: dict[str, Any] = {}
    # A plug-in written against the older ``fit(images, labels)`` still trains, without a bar.
    if on_train_progress is not None and "on_progress" in parameters:
        kwargs["on_progress"] = on_train_progress
    if "groups" in parameters:
        kwargs["groups"] = linked_photo_groups(train_items)
    return kwargs


def train_model(
    data_dir: str | Path,
    config: TrainingConfig,
    on_progress: ProgressCallback | None = None,
    items: list[LabelledItem] | None = None,
    on_train_progress: FitProgress | None = None,
) -> CalibratedModel:
    """Discover (unless ``items`` are given), decode, split, fit, calibrate.

    ``on_progress(n)`` counts decoded files; ``on_train_progress(step, total)`` is passed to the
    detector's ``fit`` (learned detectors report their optimiser steps).
    """
    params = seeded_params(config.detector, config.params, config.seed)
    detector = create(config.detector, **params)  # bad parameters fail before decoding
    items = discover_dataset(data_dir) if items is None else items
    decoded = decode_items(items, on_progress, min_side=detector.min_image_side)
    labels = decoded.labels
    if len(set(labels.tolist())) < 2:
        raise InputError("after dropping undecodable files, one class is empty", str(data_dir))
    train_idx, held_idx = split_holdout(decoded.items, config.holdout, config.seed)
    train_items = [decoded.items[i] for i in train_idx]
    detector.fit(
        [decoded.images[i] for i in train_idx],
        labels[train_idx],
        **_fit_kwargs(detector, train_items, on_train_progress),
    )
    held_scores = np.asarray(detector.predict_proba([decoded.images[i] for i in held_idx]))
    held_labels = labels[held_idx]
    calibration = calibrate_threshold(
        held_scores[held_labels == 0], config.target_fpr, config.review_fpr
    )
    held_items = [decoded.items[i] for i in held_idx]
    info = {
        "name": config.name or config.detector,
        "detector": config.detector,
        "fakescope_version": __version__,
        "training": {
            "data": _recorded_path(data_dir),
            "seed": config.seed,
            "holdout_fraction": config.holdout,
            "n_train": {
                "real": int((labels[train_idx] == 0).sum()),
                "fake": int((labels[train_idx] == 1).sum()),
            },
            "n_held_out": {
                "real": int((held_labels == 0).sum()),
                "fake": int((held_labels == 1).sum()),
            },
            "fake_groups": dict(Counter(it.group for it in decoded.items if it.label == 1)),
            "skipped_files": describe_errors(decoded.errors, data_dir),
            "n_skipped_files": len(decoded.errors),
        },
        # The held-out reals also set the threshold, so FPR at the threshold here is at most
        # the target by construction; AP, ROC-AUC and TPR are honest held-out numbers.
        "validation": grouped_metrics(held_items, held_scores, calibration.threshold),
    }
    return CalibratedModel(detector=detector, calibration=calibration, info=info)
