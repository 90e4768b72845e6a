"""Robustness grid: how detection degrades under the perturbation suite, both classes alike.

Each *sweep* varies one perturbation over a range (JPEG quality 100 to 30, blur sigma 0 to 3,
resize 0.25 to 2, noise, WebP, social-network chains); each point is a perturbation spec of
:mod:`fakescope.data.perturb`. Every image, real or fake, gets the same spec with its own seed
(derived from the run's seed and the image's path), so a point is replayable image by image and
a real and a fake are treated exactly alike: no perturbation can become a label.

Per point: AP and TPR at 5 % FPR (both threshold-free, with bootstrap intervals), and TPR and
FPR at the model's *calibrated* threshold, which is what a deployment sees: a perturbation that
raises the score of real images shows up as an FPR far above the target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fakescope.data.layout import fake_groups, group_indices
from fakescope.data.perturb import derive_seed, parse_spec
from fakescope.evaluation.bootstrap import BootstrapConfig, metrics_with_intervals
from fakescope.evaluation.eval_set import EvalSet
from fakescope.evaluation.metrics import binary_metrics
from fakescope.evaluation.scoring import ModelScorer

#: The "no perturbation" point of a sweep uses this spec name.
CLEAN = "clean"


@dataclass(frozen=True)
class SweepPoint:
    x: float | str  # the swept value (quality, sigma, scale) or a preset name
    spec: str  # a perturbation spec, or CLEAN


@dataclass(frozen=True)
class Sweep:
    name: str
    axis: str  # axis label for plots
    points: tuple[SweepPoint, ...]
    reverse_axis: bool = False  # JPEG quality: stronger to the right means decreasing values


def _points(template: str, values: Sequence[float], clean_at: float | None) -> tuple:
    points = [
        SweepPoint(v, CLEAN if clean_at is not None and v == clean_at else template.format(v))
        for v in values
    ]
    return tuple(points)


SWEEPS: dict[str, Sweep] = {
    sweep.name: sweep
    for sweep in (
        Sweep("jpeg", "JPEG quality", _points("jpeg:{:g}", [100, 90, 75, 50, 30], None), True),
        Sweep("blur", "Gaussian blur sigma (px)", _points("blur:{:g}", [0, 0.5, 1, 2, 3], 0)),
        Sweep("resize", "resize factor", _points("resize:{:g}", [0.25, 0.5, 1, 1.5, 2], 1)),
        Sweep("noise", "Gaussian noise sigma (0-255)", _points("noise:{:g}", [0, 2, 5, 10], 0)),
        Sweep("webp", "WebP quality", _points("webp:{:g}", [90, 75, 50, 30], None), True),
        Sweep(
            "social",
            "social-network upload (approximate)",
            tuple(
                SweepPoint(name, f"social:{name}")
                for name in ("twitter", "facebook", "instagram", "whatsapp")
            ),
        ),
    )
}


def resolve_sweeps(tokens: Sequence[str]) -> list[Sweep]:
    """Sweep names, ``all``, or perturbation specs (each a one-point sweep); raises ValueError."""
    sweeps: list[Sweep] = []
    for token in tokens:
        token = token.strip()
        if token == "all":
            sweeps += [s for s in SWEEPS.values() if s not in sweeps]
        elif token in SWEEPS:
            if SWEEPS[token] not in sweeps:
                sweeps.append(SWEEPS[token])
        else:
            parse_spec(token)  # raises ValueError with the reason
            sweeps.append(Sweep(token, token, (SweepPoint(token, token),)))
    return sweeps


def perturbed_images(eval_set: EvalSet, spec: str, seed: int) -> Callable[[list[int]], list]:
    """A function giving the perturbed pixels of some of ``eval_set``'s images."""
    chain = parse_spec(spec)

    def make(indices: list[int]) -> list[np.ndarray]:
        return [
            chain(eval_set.images[i], derive_seed(seed, f"{spec}|{eval_set.relative(i)}")).pixels
            for i in indices
        ]

    return make


def _point_metrics(
    eval_set: EvalSet,
    scores: np.ndarray,
    threshold: float,
    bootstrap: BootstrapConfig,
) -> dict[str, Any]:
    labels = eval_set.labels
    overall = metrics_with_intervals(labels, scores, threshold, eval_set.photos, bootstrap)
    kept = ("ap", "tpr_at_fpr_5", "roc_auc", "tpr", "fpr", "n_real", "n_fake", "ci")
    result = {key: overall[key] for key in kept}
    result["ci"] = {key: overall["ci"][key] for key in ("ap", "tpr_at_fpr_5")}
    groups = {}
    for group in fake_groups(eval_set.items):
        index = group_indices(eval_set.items, group)
        metrics = binary_metrics(labels[index], scores[index], threshold)
        groups[group] = {"ap": metrics["ap"], "tpr_at_fpr_5": metrics["tpr_at_fpr_5"]}
    result["groups"] = groups
    return result


def run_robustness(
    scorer: ModelScorer,
    eval_set: EvalSet,
    clean_scores: np.ndarray,
    sweeps: Sequence[Sweep],
    seed: int,
    bootstrap: BootstrapConfig,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Scores every point of every sweep on ``eval_set``: the JSON-ready grid, with the clean
    images' metrics (``clean``) as the baseline of every sweep."""
    keys = eval_set.keys()
    min_side = int(scorer.model.detector.min_image_side)
    result: dict[str, Any] = {}
    clean = _point_metrics(eval_set, clean_scores, scorer.threshold, bootstrap)
    for sweep in sweeps:
        points = []
        for point in sweep.points:
            if point.spec == CLEAN:
                scores = clean_scores
            else:
                table = scorer.score(
                    _guarded(perturbed_images(eval_set, point.spec, seed), min_side),
                    keys,
                    condition=f"perturb|{point.spec}|seed={seed}",
                    on_progress=on_progress,
                )
                scores = table.column()
            metrics = _point_metrics(eval_set, scores, scorer.threshold, bootstrap)
            points.append({"x": point.x, "spec": point.spec, **metrics})
        result[sweep.name] = {
            "axis": sweep.axis,
            "reverse_axis": sweep.reverse_axis,
            "points": points,
        }
    return {"clean": clean, "sweeps": result}


def _guarded(
    make: Callable[[list[int]], list[np.ndarray]], min_side: int
) -> Callable[[list[int]], list[np.ndarray]]:
    """Pads images a perturbation shrank below the detector's minimum side (edge replication),
    so that a strong downscale of a small image scores instead of failing the whole point."""

    def wrapped(indices: list[int]) -> list[np.ndarray]:
        images = make(indices)
        out = []
        for pixels in images:
            height, width = pixels.shape[:2]
            if min(height, width) < min_side:
                pad_h, pad_w = max(0, min_side - height), max(0, min_side - width)
                pixels = np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            out.append(pixels)
        return out

    return wrapped


def sweep_points_total(sweeps: Sequence[Sweep]) -> int:
    return sum(1 for sweep in sweeps for point in sweep.points if point.spec != CLEAN)
