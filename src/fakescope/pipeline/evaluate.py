"""Evaluating a calibrated model on a labelled dataset, overall and per fake group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fakescope.calibration.model import CalibratedModel
from fakescope.data.layout import (
    LabelledItem,
    discover_dataset,
    fake_groups,
    group_indices,
    group_reals,
)
from fakescope.errors import InputError
from fakescope.evaluation.metrics import binary_metrics
from fakescope.pipeline.dataset import ProgressCallback, decode_items, describe_errors


def grouped_metrics(
    items: list[LabelledItem], scores: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Metrics over everything, and for each fake group against the reals it pairs with."""
    labels = np.array([item.label for item in items], dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    per_group = {}
    for group in fake_groups(items):
        index = group_indices(items, group)
        per_group[group] = binary_metrics(labels[index], scores[index], threshold)
        per_group[group]["reals"] = group_reals(items, group)[1]
    return {"overall": binary_metrics(labels, scores, threshold), "groups": per_group}


def evaluate_model(
    model: CalibratedModel,
    data_dir: str | Path,
    batch_size: int = 64,
    on_progress: ProgressCallback | None = None,
    items: list[LabelledItem] | None = None,
) -> dict[str, Any]:
    """Score every image under ``data_dir`` and report metrics at the model's threshold."""
    items = discover_dataset(data_dir) if items is None else items
    scores: list[np.ndarray] = []
    kept: list[LabelledItem] = []
    errors: list[InputError] = []
    for start in range(0, len(items), batch_size):
        decoded = decode_items(
            items[start : start + batch_size], on_progress, min_side=model.detector.min_image_side
        )
        errors.extend(decoded.errors)
        if decoded.images:
            scores.append(model.score(decoded.images))
            kept.extend(decoded.items)
    all_scores = np.concatenate(scores) if scores else np.empty(0)
    report = grouped_metrics(kept, all_scores, model.calibration.threshold)
    report.update(
        {
            "model": model.name,
            "data": str(data_dir),
            "threshold": model.calibration.threshold,
            "target_fpr": model.calibration.target_fpr,
            "n_errors": len(errors),
            "errors": describe_errors(errors, data_dir),
        }
    )
    return report
