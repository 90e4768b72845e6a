"""Cross-generator matrix (Wang et al., CVPR 2020): train on one family, test on all others.

For each training family A, a fresh detector (any registered one, with given parameters) is
fitted on the *training* side of a photo-grouped split (:mod:`fakescope.evaluation.eval_set`):
real images of the training photos against A's fakes made from training photos, at most
``max_train_per_class`` of each class (a seeded draw). It is then tested on the test side, for
every fake group: AP and TPR at 5 % FPR against the test reals the group is compared with.

As in the original ``scripts/cross_generator_table.py``, the test set may hold **unseen fakes**
from outside the dataset (``unseen_columns``, e.g. the genuine Stable Diffusion v1 samples of
``../shared/data/sd-v1``, added by :func:`fakescope.evaluation.suite.add_external_fakes` as
centre crops of the test reals' size, never resampled): families no model here trains on,
tested against the shared test reals. One column is added:

- **processed-real FPR**: the share of processed-real controls (resized, recompressed, blurred,
  screenshots; label real) at or above the threshold that gives 5 % FPR on the test reals.
  Processed reals are a control: they never enter training and are not among the test reals.

DCGAN-style families stored as ``<family>/0_real`` + ``<family>/1_fake`` train and test against
their own size-matched reals (the layout pairs them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fakescope.calibration.threshold import threshold_at_fpr
from fakescope.data.benchmark_splits import FORGERIES
from fakescope.data.layout import LabelledItem, fake_groups, group_reals
from fakescope.detectors import create
from fakescope.evaluation.eval_set import EvalSet, Split, cap_buckets
from fakescope.evaluation.metrics import binary_metrics
from fakescope.pipeline.dataset import decode_items

#: Real sources that are controls, never training negatives (fakescope data benchmark).
CONTROL_SOURCES = frozenset({"processed-real"})
TARGET_FPR = 0.05

Log = Callable[[str], None]


def default_train_families(items: Sequence[LabelledItem]) -> list[str]:
    """Every fake group that is a generator family (forgery kinds are left out)."""
    return [group for group in fake_groups(list(items)) if group not in FORGERIES]


def _cell(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    metrics = binary_metrics(labels, scores)
    return {
        "ap": metrics["ap"],
        "tpr_at_fpr_5": metrics["tpr_at_fpr_5"],
        "n_real": metrics["n_real"],
        "n_fake": metrics["n_fake"],
    }


def _is_control(item: LabelledItem, sources: dict[Any, str]) -> bool:
    return item.label == 0 and sources.get(item.path) in CONTROL_SOURCES


def training_items(
    split: Split,
    family: str,
    sources: dict[Any, str],
    max_per_class: int,
    seed: int,
) -> list[LabelledItem]:
    """Training reals (no controls) paired with ``family`` and its training fakes, capped."""
    train = [item for item in split.train if not _is_control(item, sources)]
    real_index, _ = group_reals(train, family)
    fakes = [item for item in train if item.label == 1 and item.group == family]
    reals = [train[i] for i in real_index]
    chosen = reals + fakes
    buckets = ["real"] * len(reals) + ["fake"] * len(fakes)
    return cap_buckets(chosen, buckets, max_per_class, seed)


def run_cross_generator(
    split: Split,
    test_set: EvalSet,
    train_families: Sequence[str],
    detector: str,
    params: dict[str, Any],
    *,
    max_train_per_class: int = 800,
    seed: int = 0,
    unseen_columns: Sequence[str] = (),
    log: Log | None = None,
) -> dict[str, Any]:
    """The matrix as a JSON-ready dict: ``rows[train family][test column] = {ap, ...}``."""
    from fakescope.pipeline.training import seeded_params

    sources = test_set.real_sources
    params = seeded_params(detector, params, seed)
    test_items = test_set.items
    labels = test_set.labels
    is_control = np.array([_is_control(item, sources) for item in test_items])
    columns = fake_groups(test_items)
    shared_reals = [
        i for i in group_reals(test_items, "")[0] if not is_control[i] and not test_items[i].group
    ]
    rows: dict[str, Any] = {}
    for family in train_families:
        started = time.perf_counter()
        chosen = training_items(split, family, sources, max_train_per_class, seed)
        decoded = decode_items(chosen)
        train_labels = decoded.labels
        if len(set(train_labels.tolist())) < 2:
            rows[family] = {"error": f"no training data of both classes for {family!r}"}
            continue
        model = create(detector, **params)
        model.fit(decoded.images, train_labels)
        fit_seconds = time.perf_counter() - started
        scores = np.asarray(model.predict_proba(test_set.images), dtype=np.float64)
        row: dict[str, Any] = {
            "n_train_real": int((train_labels == 0).sum()),
            "n_train_fake": int((train_labels == 1).sum()),
        }
        for group in fake_groups(test_items):
            reals = [i for i in group_reals(test_items, group)[0] if not is_control[i]]
            fakes = [i for i, it in enumerate(test_items) if it.label == 1 and it.group == group]
            index = np.array(reals + fakes)
            row[group] = _cell(labels[index], scores[index])
        real_scores = scores[shared_reals] if shared_reals else np.empty(0)
        if is_control.any() and real_scores.size:
            threshold = threshold_at_fpr(real_scores, TARGET_FPR)
            row["processed_real_fpr"] = float(np.mean(scores[is_control] >= threshold))
            row["n_processed_real"] = int(is_control.sum())
        row["fit_seconds"] = round(fit_seconds, 1)
        rows[family] = row
        if log is not None:
            log(f"cross-generator: {detector} trained on {family} in {fit_seconds:.0f} s")
    return {
        "detector": detector,
        "params": params,
        "protocol": split.protocol,
        "split": split.description,
        "max_train_per_class": max_train_per_class,
        "train_families": list(train_families),
        "columns": columns,
        "unseen_columns": [column for column in unseen_columns if column in columns],
        "rows": rows,
    }


def to_markdown(matrix: dict[str, Any]) -> str:
    """The matrix as a Markdown table (cells: AP / TPR at 5 % FPR; bold: the training family)."""
    columns = matrix["columns"]
    lines = [
        f"### {matrix['detector']}",
        "",
        "| trained on | " + " | ".join(columns) + " | processed-real FPR |",
        "|---|" + "---|" * (len(columns) + 1),
    ]
    for family, row in matrix["rows"].items():
        cells = []
        for column in columns:
            value = row.get(column)
            if not isinstance(value, dict) or value.get("ap") is None:
                cells.append("-")
                continue
            text = f"{value['ap']:.2f} / {value['tpr_at_fpr_5']:.2f}"
            cells.append(f"**{text}**" if column == family else text)
        fpr = row.get("processed_real_fpr")
        cells.append("-" if fpr is None else f"{fpr:.1%}")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
