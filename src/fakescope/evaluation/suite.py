"""``fakescope eval``: the whole evaluation of one calibrated model on one dataset.

One decoded, capped evaluation set feeds every part (:mod:`fakescope.evaluation.eval_set`):

1. **metrics** overall and per fake group: AP, ROC-AUC, TPR at 1 % and 5 % FPR, accuracy, TPR
   and FPR at the model's *calibrated* threshold (never at a threshold chosen on the test set),
   expected calibration error, each with a 95 % photo-clustered bootstrap interval; and the FPR
   at the threshold per real source (processed reals are a control);
2. **bias check**: the data audit of the dataset, with a leakage note on every flagged group,
   and the same metrics on the debiased copy (``debias``) side by side;
3. **cross-generator matrix** (``train_on``): a fresh detector per training family;
4. **robustness grid** (``perturb``): sweeps of the perturbation suite on both classes alike;
5. **analysis** (``analyze``): :mod:`fakescope.analysis.suite`.

The result is a JSON-ready dict (the report) and the arrays its plots need (the artifacts);
:mod:`fakescope.reports` writes both as JSON and as one self-contained HTML file.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fakescope import __version__
from fakescope.calibration.model import CalibratedModel
from fakescope.data.benchmark_splits import centre_crop, images_in
from fakescope.data.layout import LabelledItem, discover_dataset, fake_groups, group_indices
from fakescope.errors import InputError
from fakescope.evaluation.bootstrap import BootstrapConfig, metrics_with_intervals
from fakescope.evaluation.eval_set import (
    EvalSet,
    Split,
    build_eval_set,
    cap_buckets,
    split_dataset,
)
from fakescope.evaluation.scoring import ModelScorer, ScoreCache, default_cache_dir
from fakescope.pipeline.dataset import describe_errors

PHOTO_CHOICES = ("auto", "test", "all")
TASKS = ("detect", "localize")
Log = Callable[[str], None]


@dataclass
class SuiteConfig:
    data: Path
    model: str
    seed: int = 0
    photos: str = "auto"
    max_per_group: int = 300
    n_resamples: int = 1000
    train_on: tuple[str, ...] = ()
    cross_detector: str | None = None
    cross_params: dict[str, Any] = field(default_factory=dict)
    max_train_per_class: int = 400
    cross_per_group: int = 100
    perturb: tuple[str, ...] = ()
    robust_per_group: int = 20
    audit: bool = True
    debias: Path | None = None
    unseen_fakes: tuple[Path, ...] = ()
    analyze: bool = False
    analysis: Any = None  # an AnalysisConfig; None = its defaults
    compare: tuple[str, ...] = ()
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    command: str = ""

    def __post_init__(self) -> None:
        if self.photos not in PHOTO_CHOICES:
            raise ValueError(f"photos must be one of {PHOTO_CHOICES}, got {self.photos!r}")
        if self.max_per_group < 2 or self.robust_per_group < 2:
            raise ValueError("the caps per group must be at least 2")


def load_scorer(name: str, cache: ScoreCache, label: str | None = None) -> ModelScorer:
    from fakescope.models import load_model, resolve_model_dir

    directory = resolve_model_dir(name)
    model: CalibratedModel = load_model(name)
    return ModelScorer(model, directory, cache, label=label or model.name)


# ------------------------------------------------------------------ the evaluation set


def add_external_fakes(eval_set: EvalSet, folder: Path, min_side: int) -> tuple[EvalSet, str]:
    """Fakes from outside the dataset (e.g. genuine Stable Diffusion samples) as one more group,
    centre-cropped (never resampled) to the side of the most common real image."""
    from fakescope.io.image import load_image

    name = folder.name
    real_sides = Counter(
        min(image.shape[:2])
        for image, item in zip(eval_set.images, eval_set.items, strict=True)
        if item.label == 0
    )
    side = real_sides.most_common(1)[0][0] if real_sides else 256
    items, images = [], []
    errors = list(eval_set.errors)
    for path in images_in(folder):
        try:
            pixels = centre_crop(load_image(path).pixels, side)
        except InputError as exc:
            errors.append(exc)
            continue
        if min(pixels.shape[:2]) < min_side:
            continue
        items.append(LabelledItem(path, 1, name, f"external:{name}:{path.stem}"))
        images.append(pixels)
    merged = EvalSet(
        eval_set.root,
        eval_set.items + items,
        eval_set.images + images,
        eval_set.buckets + [name] * len(items),
        eval_set.real_sources,
        errors,
    )
    return merged, name


def _group_metrics(
    eval_set: EvalSet, scores: np.ndarray, threshold: float, bootstrap: BootstrapConfig
) -> dict[str, Any]:
    labels, photos = eval_set.labels, eval_set.photos
    groups = {}
    for group in fake_groups(eval_set.items):
        index = group_indices(eval_set.items, group)
        groups[group] = metrics_with_intervals(
            labels[index], scores[index], threshold, [photos[i] for i in index], bootstrap
        )
    return {
        "overall": metrics_with_intervals(labels, scores, threshold, photos, bootstrap),
        "groups": groups,
    }


def _real_sources(
    eval_set: EvalSet, scores: np.ndarray, threshold: float, bootstrap: BootstrapConfig
) -> dict[str, Any]:
    """FPR at the calibrated threshold per real source, with a photo-clustered interval."""
    out: dict[str, Any] = {}
    for bucket in sorted(set(eval_set.buckets)):
        if not bucket.startswith("real:"):
            continue
        index = [i for i, b in enumerate(eval_set.buckets) if b == bucket]
        flagged = (scores[index] >= threshold).astype(np.float64)
        photos = [eval_set.photos[i] for i in index]
        from fakescope.evaluation.bootstrap import cluster_weights

        weights = cluster_weights(
            np.zeros(len(index)), photos, bootstrap.n_resamples, bootstrap.seed
        )
        interval = None
        if bootstrap.n_resamples:
            replicates = weights @ flagged / weights.sum(axis=1)
            tail = (1 - bootstrap.confidence) / 2 * 100
            interval = [float(v) for v in np.percentile(replicates, [tail, 100 - tail])]
        out[bucket.removeprefix("real:")] = {
            "n": len(index),
            "fpr": float(flagged.mean()),
            "ci": interval,
        }
    return out


# ------------------------------------------------------------------ the suite


def run_suite(
    config: SuiteConfig,
    log: Log | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs every requested part; returns (report, artifacts)."""
    say = log or (lambda _message: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        say(f"{name}: {timings[name]:.0f} s")
        return time.perf_counter()

    cache = ScoreCache(config.cache_dir)
    scorer = load_scorer(config.model, cache)
    bootstrap = BootstrapConfig(n_resamples=config.n_resamples, seed=config.seed)
    root = Path(config.data)
    items = discover_dataset(root)
    needs_split = config.photos != "all" or bool(config.train_on)
    split: Split | None = split_dataset(items, root, config.seed) if needs_split else None
    use_test = config.photos == "test" or (
        config.photos == "auto" and split is not None and split.protocol == "benchmark"
    )
    selected = split.test if (use_test and split is not None) else items
    min_side = int(scorer.model.detector.min_image_side)
    eval_set = build_eval_set(
        root, selected, config.max_per_group, config.seed, min_side, on_progress
    )
    externals = []
    for folder in config.unseen_fakes:
        eval_set, name = add_external_fakes(eval_set, Path(folder), min_side)
        externals.append(name)
    tick = lap("decode", started)

    keys = eval_set.keys()
    table = scorer.score(eval_set.images, keys, "clean", on_progress=on_progress)
    scores = table.column()
    threshold = scorer.threshold
    metrics = _group_metrics(eval_set, scores, threshold, bootstrap)
    members = {
        column: _group_metrics(eval_set, table.column(column), threshold, BootstrapConfig(0))
        for column in table.columns[1:]
    }
    tick = lap("metrics", tick)

    model = scorer.model
    report: dict[str, Any] = {
        "report": "fakescope-eval",
        "schema_version": 1,
        "fakescope_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": config.command,
        "seed": config.seed,
        "model": {
            "name": model.name,
            "source": str(config.model),
            "detector": model.detector.name,
            "fingerprint": scorer.fingerprint,
            "threshold": threshold,
            "target_fpr": model.calibration.target_fpr,
            "members": list(scorer.members),
            "backend": _backend(model),
        },
        "data": {
            "path": str(root),
            "n_items_in_dataset": len(items),
            "selection": split.description if (use_test and split) else "every image",
            "photos": "test" if use_test else "all",
            "max_per_group": config.max_per_group,
            "n_evaluated": len(eval_set.items),
            "buckets": {b: eval_set.buckets.count(b) for b in sorted(set(eval_set.buckets))},
            "unseen_fakes": externals,
        },
        "bootstrap": {
            "n_resamples": bootstrap.n_resamples,
            "confidence": bootstrap.confidence,
            "unit": "photo (clusters resampled with replacement, stratified by class content)",
        },
        # Kept at the top level as `fakescope eval --format json` has always written them.
        "model_name": model.name,
        "threshold": threshold,
        "target_fpr": model.calibration.target_fpr,
        "overall": metrics["overall"],
        "groups": metrics["groups"],
        "members": members,
        "real_sources": _real_sources(eval_set, scores, threshold, bootstrap),
        "n_errors": len(eval_set.errors),
        "errors": describe_errors(eval_set.errors, root),
        "sections": ["metrics"],
        "plots": [],
    }
    artifacts: dict[str, Any] = {
        "labels": eval_set.labels,
        "scores": scores,
        "groups": [item.group for item in eval_set.items],
        "buckets": eval_set.buckets,
        "items": eval_set.items,
        "threshold": threshold,
    }

    if config.audit:
        from fakescope.evaluation.bias import bias_check, leakage_note

        bias = bias_check(root, seed=config.seed)
        notes = {g: leakage_note(flags) for g, flags in bias["flagged_groups"].items()}
        bias["notes"] = {g: n for g, n in notes.items() if n}
        overall_note = leakage_note(bias["flagged_overall"])
        if overall_note:
            bias["notes"]["overall"] = overall_note
        if config.debias is not None:
            bias["debiased"] = _debiased(config.debias, eval_set, scorer, threshold, bootstrap)
            if config.audit:
                debiased_audit = bias_check(Path(config.debias), seed=config.seed)
                bias["debiased"]["flagged_groups"] = debiased_audit["flagged_groups"]
                bias["debiased"]["flagged_overall"] = debiased_audit["flagged_overall"]
        report["bias"] = bias
        report["sections"].append("bias")
        tick = lap("bias", tick)

    if config.train_on:
        from fakescope.evaluation.cross_generator import (
            default_train_families,
            run_cross_generator,
        )

        assert split is not None
        families = (
            default_train_families(split.train)
            if "all" in config.train_on
            else list(config.train_on)
        )
        known = set(fake_groups(items))
        unknown = sorted(set(families) - known)
        if unknown:
            raise InputError(
                f"--train-on: no fake group {', '.join(unknown)}; the dataset has "
                f"{', '.join(sorted(known))}"
            )
        test_paths = {item.path for item in split.test}
        test_index = [
            i
            for i, item in enumerate(eval_set.items)
            if item.path in test_paths or item.group in externals
        ]
        # Each training family re-scores the test set: a smaller seeded cap keeps learned
        # detectors within the run's budget.
        test_index = cap_buckets(
            test_index,
            [eval_set.buckets[i] for i in test_index],
            config.cross_per_group,
            config.seed,
        )
        detector = config.cross_detector or model.detector.name
        params = dict(config.cross_params)
        if config.cross_detector is None and not params:
            params = dict(model.detector.get_params(deep=False))
        report["cross_generator"] = run_cross_generator(
            split,
            eval_set.subset(test_index),
            families,
            detector,
            params,
            max_train_per_class=config.max_train_per_class,
            seed=config.seed,
            unseen_columns=externals,
            log=say,
        )
        report["cross_generator"]["test_cap_per_group"] = config.cross_per_group
        report["cross_generator"]["n_test"] = len(test_index)
        report["sections"].append("cross_generator")
        tick = lap("cross_generator", tick)

    if config.perturb:
        from fakescope.evaluation.robustness import resolve_sweeps, run_robustness

        sweeps = resolve_sweeps(config.perturb)
        robust_index = cap_buckets(
            list(range(len(eval_set.items))),
            eval_set.buckets,
            lambda b: (
                4 * config.robust_per_group if b.startswith("real:") else config.robust_per_group
            ),
            config.seed,
        )
        subset = eval_set.subset(robust_index)
        report["robustness"] = {
            "per_group": config.robust_per_group,
            "reals_per_source": 4 * config.robust_per_group,
            "n_images": len(subset.items),
            "seeding": "each image's perturbation is seeded by (seed, spec, relative path); "
            "reals and fakes get the same spec",
            **run_robustness(
                scorer,
                subset,
                scores[robust_index],
                sweeps,
                config.seed,
                BootstrapConfig(n_resamples=min(config.n_resamples, 200), seed=config.seed),
            ),
        }
        report["sections"].append("robustness")
        tick = lap("robustness", tick)

    if config.analyze:
        from fakescope.analysis.panel import DetectorPanel
        from fakescope.analysis.suite import AnalysisConfig, run_analysis

        scorers = [scorer]
        for name in config.compare:
            extra = load_scorer(name, cache)
            if extra.label in {s.label for s in scorers}:  # two models with one name
                extra.label = f"{extra.label} ({Path(name).parent.name}/{Path(name).name})"
            scorers.append(extra)
        report["compare"] = [
            {
                "label": s.label,
                "source": name,
                "detector": s.model.detector.name,
                "backend": _backend(s.model),
                "fingerprint": s.fingerprint,
            }
            for s, name in zip(scorers[1:], config.compare, strict=True)
        ]
        analysis_config = config.analysis or AnalysisConfig(seed=config.seed)
        report["analysis"], artifacts["analysis"] = run_analysis(
            eval_set, DetectorPanel(scorers), analysis_config, log=say
        )
        report["sections"].append("analysis")
        tick = lap("analysis", tick)

    timings["total"] = round(time.perf_counter() - started, 1)
    report["timings"] = timings
    return report, artifacts


def _backend(model: CalibratedModel) -> str:
    detector = model.detector
    members = getattr(detector, "_fitted_members", None)
    parts = [detector, *(members().values() if callable(members) else [])]
    if any(getattr(part, "onnx_backend_", None) is not None for part in parts):
        return "onnxruntime"
    if any(getattr(part, "network_", None) is not None for part in parts):
        return "torch"
    return "numpy/scikit-learn"


def _debiased(
    debias_root: Path,
    eval_set: EvalSet,
    scorer: ModelScorer,
    threshold: float,
    bootstrap: BootstrapConfig,
) -> dict[str, Any]:
    from fakescope.evaluation.bias import debiased_counterpart

    if not Path(debias_root).is_dir():
        raise InputError("the debiased copy does not exist or is not a folder", str(debias_root))
    internal = [
        i for i, item in enumerate(eval_set.items) if item.path.is_relative_to(eval_set.root)
    ]
    copy, missing = debiased_counterpart(eval_set.subset(internal), Path(debias_root))
    scores = scorer.score(copy.images, copy.keys(), "clean").column()
    metrics = _group_metrics(copy, scores, threshold, bootstrap)
    return {
        "path": str(debias_root),
        "n_evaluated": len(copy.items),
        "n_missing": missing,
        "overall": metrics["overall"],
        "groups": metrics["groups"],
    }


def describe_run(argv: Sequence[str]) -> str:
    """The command line as run, for the report header."""
    return " ".join(argv)


def with_analysis_seed(config: SuiteConfig) -> SuiteConfig:
    """``config`` whose analysis settings use the suite's seed."""
    from fakescope.analysis.suite import AnalysisConfig

    analysis = config.analysis or AnalysisConfig()
    return replace(config, analysis=replace(analysis, seed=config.seed))
