"""Localization metrics, and a localizer run over a benchmark split under perturbations.

Conventions (``docs/localization.md``):

* **Per-image F1 and IoU** at the localizer's threshold (``mask = heat >= threshold``). On a
  pristine image (empty ground truth) both are 1 when nothing is flagged and 0 otherwise
  (:func:`fakescope.calibration.pixel.image_f1`), so painting every photo is punished on the
  pristine ones. They are averaged over **all** images, over the **tampered** ones and over
  the **pristine** ones, each reported.
* **Pixel ROC-AUC** pooled over pixels of every image (threshold-free), on a seeded subsample
  of at most ``pixel_samples`` pixels per image, so memory stays bounded however many images.
* **Image AP**: average precision of the image score, tampered (positive) against pristine.
* **Per forgery kind**: each kind's tampered images together with *all* pristine images (the
  same pristine images in every kind's row); ``overall`` is every image.

:func:`evaluate_localizer` streams a split through a localizer under one perturbation spec of
:mod:`fakescope.data.perturb`: the image and, for geometric steps, the mask get the same
params (the mask through :func:`~fakescope.data.perturb.replay_mask`, the module's own
mask-following code). Only per-image numbers and the pixel subsample are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from fakescope.calibration.pixel import image_f1
from fakescope.data.benchmark_splits import LocalizationItem
from fakescope.data.perturb import Chain, derive_seed, parse_spec, replay_mask
from fakescope.errors import InputError
from fakescope.evaluation.robustness import CLEAN, SWEEPS, resolve_sweeps
from fakescope.io.image import load_image

#: The kind of a pristine image (:class:`~fakescope.data.benchmark_splits.LocalizationItem`).
PRISTINE = "pristine"
#: Pixels kept per image for the pooled pixel ROC-AUC.
PIXEL_SAMPLES_PER_IMAGE = 4096


def _robustness_spec(sweep: str, value: float | str) -> str:
    """The spec the robustness grid uses for one point, so both suites name settings alike."""
    for point in SWEEPS[sweep].points:
        if point.x == value:
            return point.spec
    raise KeyError(f"the {sweep!r} sweep has no point {value!r}")


#: The perturbation suite of ``fakescope eval --task localize`` when none is given: the clean
#: images, three JPEG qualities, a downscale, a blur, noise and one social-network upload, with
#: the specs of the detection robustness grid (:data:`fakescope.evaluation.robustness.SWEEPS`).
DEFAULT_LOCALIZATION_SUITE: tuple[str, ...] = (
    CLEAN,
    _robustness_spec("jpeg", 90),
    _robustness_spec("jpeg", 75),
    _robustness_spec("jpeg", 50),
    _robustness_spec("resize", 0.5),
    _robustness_spec("blur", 1),
    _robustness_spec("noise", 5),
    _robustness_spec("social", "facebook"),
)


def resolve_localization_perturbations(tokens: Sequence[str]) -> list[str]:
    """Specs to evaluate: none or ``default`` is the default suite; ``clean``; a robustness
    sweep name (every point of it) or ``all``; or a perturbation spec. Raises ValueError."""
    specs: list[str] = []
    for token in tokens or ["default"]:
        token = token.strip()
        if token == "default":
            found = list(DEFAULT_LOCALIZATION_SUITE)
        elif token == CLEAN:
            found = [CLEAN]
        else:
            found = [point.spec for sweep in resolve_sweeps([token]) for point in sweep.points]
        specs += [spec for spec in found if spec not in specs]
    return specs


def image_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Pixel IoU of one image; on a pristine image 1 when nothing is flagged, else 0."""
    if np.count_nonzero(truth) == 0:
        return 1.0 if np.count_nonzero(predicted) == 0 else 0.0
    union = np.count_nonzero(predicted | truth)
    return np.count_nonzero(predicted & truth) / union


@dataclass(frozen=True)
class ImageOutcome:
    """What the metrics keep of one image (the arrays are dropped)."""

    kind: str
    f1: float
    iou: float
    score: float
    flagged_fraction: float

    @property
    def tampered(self) -> bool:
        return self.kind != PRISTINE


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(np.mean(values)) if values else None


class LocalizationMetrics:
    """Accumulates images one at a time; :meth:`result` gives the JSON-ready metrics."""

    def __init__(
        self,
        threshold: float,
        *,
        image_threshold: float | None = None,
        pixel_samples: int = PIXEL_SAMPLES_PER_IMAGE,
        seed: int = 0,
    ) -> None:
        if pixel_samples < 1:
            raise ValueError(f"pixel_samples must be >= 1, got {pixel_samples}")
        self.threshold = float(threshold)
        self.image_threshold = self.threshold if image_threshold is None else float(image_threshold)
        self.pixel_samples = pixel_samples
        self.rng = np.random.default_rng(seed)
        self.outcomes: list[ImageOutcome] = []
        self.heat_samples: list[np.ndarray] = []
        self.truth_samples: list[np.ndarray] = []
        self.errors: list[str] = []

    def add(
        self,
        heatmap: np.ndarray,
        truth: np.ndarray | None,
        kind: str,
        *,
        score: float,
        predicted: np.ndarray | None = None,
    ) -> ImageOutcome:
        """One image: its heat map, ground truth (None: pristine), kind and image score.

        ``predicted`` is the binary mask; by default ``heatmap >= threshold``.
        """
        heatmap = np.asarray(heatmap, dtype=np.float32)
        truth = np.zeros(heatmap.shape, dtype=bool) if truth is None else np.asarray(truth, bool)
        if truth.shape != heatmap.shape:
            raise ValueError(f"truth {truth.shape} does not match heat map {heatmap.shape}")
        if predicted is None:
            predicted = heatmap >= self.threshold
        predicted = np.asarray(predicted, dtype=bool)
        outcome = ImageOutcome(
            kind=kind,
            f1=float(image_f1(predicted, truth)),
            iou=float(image_iou(predicted, truth)),
            score=float(score),
            flagged_fraction=float(predicted.mean()) if predicted.size else 0.0,
        )
        self.outcomes.append(outcome)
        flat_heat, flat_truth = heatmap.ravel(), truth.ravel()
        if flat_heat.size > self.pixel_samples:
            # With replacement: a uniform draw without building a permutation of every pixel.
            index = self.rng.integers(0, flat_heat.size, self.pixel_samples)
            flat_heat, flat_truth = flat_heat[index], flat_truth[index]
        self.heat_samples.append(flat_heat.copy())
        self.truth_samples.append(flat_truth.copy())
        return outcome

    def add_error(self, message: str) -> None:
        """An image that could not be evaluated (unreadable, too small): counted, not scored."""
        self.errors.append(message)

    def _block(self, selected: list[int]) -> dict[str, Any]:
        outcomes = [self.outcomes[i] for i in selected]
        tampered = [o for o in outcomes if o.tampered]
        pristine = [o for o in outcomes if not o.tampered]
        block: dict[str, Any] = {
            "n_tampered": len(tampered),
            "n_pristine": len(pristine),
            "f1_all": _mean(o.f1 for o in outcomes),
            "f1_tampered": _mean(o.f1 for o in tampered),
            "f1_pristine": _mean(o.f1 for o in pristine),
            "iou_all": _mean(o.iou for o in outcomes),
            "iou_tampered": _mean(o.iou for o in tampered),
            "iou_pristine": _mean(o.iou for o in pristine),
            "pixel_auc": None,
            "image_ap": None,
            # The verdict of `fakescope localize` (score >= image threshold) as rates.
            "image_tpr": _mean(float(o.score >= self.image_threshold) for o in tampered),
            "image_fpr": _mean(float(o.score >= self.image_threshold) for o in pristine),
            "pristine_flagged_fraction": _mean(o.flagged_fraction for o in pristine),
        }
        if selected:
            heat = np.concatenate([self.heat_samples[i] for i in selected])
            truth = np.concatenate([self.truth_samples[i] for i in selected])
            block["n_pixels"] = int(heat.size)
            if truth.any() and not truth.all():
                block["pixel_auc"] = float(roc_auc_score(truth, heat))
        if tampered and pristine:
            labels = np.array([o.tampered for o in outcomes], dtype=np.int64)
            scores = np.array([o.score for o in outcomes], dtype=np.float64)
            block["image_ap"] = float(average_precision_score(labels, scores))
        return block

    def kinds(self) -> list[str]:
        return sorted({o.kind for o in self.outcomes if o.tampered})

    def result(self) -> dict[str, Any]:
        """``overall`` and per forgery kind (its tampered images + every pristine image)."""
        pristine = [i for i, o in enumerate(self.outcomes) if not o.tampered]
        kinds = {
            kind: self._block([i for i, o in enumerate(self.outcomes) if o.kind == kind] + pristine)
            for kind in self.kinds()
        }
        return {
            "threshold": self.threshold,
            "image_threshold": self.image_threshold,
            "n_images": len(self.outcomes),
            "n_errors": len(self.errors),
            "errors": self.errors[:20],
            "overall": self._block(list(range(len(self.outcomes)))),
            "kinds": kinds,
        }


@dataclass(frozen=True)
class PreparedItem:
    """An item's pixels and ground truth after the perturbation, and its JPEG tables."""

    pixels: np.ndarray
    truth: np.ndarray  # bool (H, W)
    jpeg_quantization: dict[int, list[int]] | None


def perturbation_seed(seed: int, spec: str, item: LocalizationItem) -> int:
    """Per image and spec, stable whatever else is evaluated (as the robustness grid does)."""
    return derive_seed(seed, f"{spec}|{item.image.parent.name}/{item.image.name}")


def prepare_item(item: LocalizationItem, chain: Chain | None, seed: int, spec: str) -> PreparedItem:
    """Decode an item and its mask, and apply the perturbation to both (InputError if bad)."""
    loaded = load_image(item.image)
    pixels = loaded.pixels
    if item.mask is not None:
        truth = load_image(item.mask).pixels[..., 0] > 127
        if truth.shape != pixels.shape[:2]:
            raise InputError(
                f"mask {truth.shape} does not match the image {pixels.shape[:2]}", str(item.mask)
            )
    else:
        truth = np.zeros(pixels.shape[:2], dtype=bool)
    if chain is None:
        return PreparedItem(pixels, truth, loaded.metadata.jpeg_quantization)
    perturbed = chain(pixels, perturbation_seed(seed, spec, item))
    # The mask follows the recorded params (nearest neighbour for geometric steps).
    truth = replay_mask(truth, perturbed.record)
    return PreparedItem(perturbed.pixels, truth, perturbed.jpeg_tables())


def evaluate_localizer(
    localizer: Any,
    items: Sequence[LocalizationItem],
    spec: str = CLEAN,
    *,
    seed: int = 0,
    pixel_samples: int = PIXEL_SAMPLES_PER_IMAGE,
    on_progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``localizer`` over ``items`` under one perturbation ``spec``; JSON-ready metrics.

    Streaming: each image is decoded, perturbed, localized and reduced to its numbers before
    the next. Items that cannot be read (or are too small for the method) are counted in
    ``n_errors``; a failure inside the localizer is a bug and propagates.
    """
    chain = None if spec == CLEAN else parse_spec(spec)
    metrics = LocalizationMetrics(
        localizer.threshold,
        image_threshold=localizer.image_threshold,
        pixel_samples=pixel_samples,
        seed=derive_seed(seed, f"pixels|{spec}"),
    )
    for item in items:
        try:
            prepared = prepare_item(item, chain, seed, spec)
            localization = localizer.localize(
                prepared.pixels, jpeg_quantization=prepared.jpeg_quantization
            )
        except InputError as exc:
            metrics.add_error(str(exc))
        else:
            metrics.add(
                localization.heatmap,
                prepared.truth,
                item.kind,
                score=localization.score,
                predicted=localization.mask,
            )
        if on_progress is not None:
            on_progress()
    return {"spec": spec, **metrics.result()}


def select_items(
    items: Sequence[LocalizationItem], limit: int | None, seed: int = 0
) -> list[LocalizationItem]:
    """At most ``limit`` items per kind (pristine included), a seeded draw; all when None."""
    if limit is None:
        return list(items)
    by_kind: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_kind.setdefault(item.kind, []).append(index)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for kind in sorted(by_kind):
        indices = by_kind[kind]
        if len(indices) > limit:
            indices = sorted(rng.choice(indices, size=limit, replace=False).tolist())
        chosen += indices
    return [items[i] for i in sorted(chosen)]


def run_localization_suite(
    localizer: Any,
    items: Sequence[LocalizationItem],
    specs: Sequence[str],
    *,
    seed: int = 0,
    pixel_samples: int = PIXEL_SAMPLES_PER_IMAGE,
    on_progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_localizer` for each spec: ``{spec: metrics}`` in the order given."""
    return {
        spec: evaluate_localizer(
            localizer,
            items,
            spec,
            seed=seed,
            pixel_samples=pixel_samples,
            on_progress=on_progress,
        )
        for spec in specs
    }


__all__ = [
    "DEFAULT_LOCALIZATION_SUITE",
    "PIXEL_SAMPLES_PER_IMAGE",
    "PRISTINE",
    "ImageOutcome",
    "LocalizationMetrics",
    "evaluate_localizer",
    "image_iou",
    "prepare_item",
    "resolve_localization_perturbations",
    "run_localization_suite",
    "select_items",
]


def localization_report(
    localizer: Any,
    items: Sequence[LocalizationItem],
    specs: Sequence[str],
    *,
    name: str,
    benchmark: str,
    split: str,
    seed: int = 0,
    limit: int | None = None,
    on_progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The JSON report of ``fakescope eval --task localize`` (and of the build scripts):
    the localizer and its thresholds, the items evaluated, and the metrics per spec."""
    kinds: dict[str, int] = {}
    for item in items:
        kinds[item.kind] = kinds.get(item.kind, 0) + 1
    return {
        "task": "localize",
        "localizer": {
            "name": name,
            "method": localizer.name,
            "threshold": localizer.threshold,
            "image_threshold": localizer.image_threshold,
        },
        "benchmark": {
            "path": benchmark,
            "split": split,
            "seed": seed,
            "limit": limit,
            "n_items": len(items),
            "kinds": dict(sorted(kinds.items())),
        },
        "perturbations": run_localization_suite(
            localizer, items, specs, seed=seed, on_progress=on_progress
        ),
    }
