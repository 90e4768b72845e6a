"""``fakescope analyze``: what the detectors rely on, on one decoded analysis set.

Runs, in order: spectra per class and group, the spectral-matching counter-attack, colour
sensitivity, channel relevance of torch detectors, shift consistency, and FGSM/PGD attacks with
SpectralDefense. Every part works on seeded, capped subsets of the evaluation set (the caps are
in the report) and on every detector of the panel: each model and each member of a fusion.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fakescope.analysis import adversarial, color, relevance, spectra
from fakescope.analysis.panel import DetectorPanel, differentiable_reason
from fakescope.data.layout import fake_groups, group_reals
from fakescope.evaluation.eval_set import EvalSet, cap_buckets
from fakescope.evaluation.metrics import binary_metrics
from fakescope.evaluation.shift import shift_consistency

SECTIONS = ("spectra", "matching", "color", "relevance", "shift", "adversarial")
Log = Callable[[str], None]


@dataclass(frozen=True)
class AnalysisConfig:
    seed: int = 0
    sections: tuple[str, ...] = SECTIONS
    spectra_per_scope: int = 200  # images averaged per class/group spectrum
    per_group: int = 16  # fakes per group for colour, shift and matching
    reals: int = 96  # reals for colour and shift
    shift_images: int = 32
    max_shift: int = 8
    adversarial_images: int = 48  # fakes attacked per differentiable detector
    epsilons: tuple[int, ...] = adversarial.EPSILONS
    pgd_steps: int = adversarial.PGD_STEPS
    top_k: int = relevance.DEFAULT_TOP_K

    def __post_init__(self) -> None:
        unknown = sorted(set(self.sections) - set(SECTIONS))
        if unknown:
            raise ValueError(f"unknown analysis section {', '.join(unknown)}; known: {SECTIONS}")


def _subset(eval_set: EvalSet, fakes_per_group: int, reals: int, seed: int) -> list[int]:
    """Indices of a seeded subset: ``fakes_per_group`` per fake group, ``reals`` per source."""
    return cap_buckets(
        list(range(len(eval_set.items))),
        eval_set.buckets,
        lambda bucket: reals if bucket.startswith("real:") else fakes_per_group,
        seed,
    )


def run_analysis(
    eval_set: EvalSet,
    panel: DetectorPanel,
    config: AnalysisConfig,
    log: Log | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON-ready analysis section and the arrays its plots need."""
    say = log or (lambda _message: None)
    result: dict[str, Any] = {
        "detectors": panel.names,
        "settings": {
            key: getattr(config, key)
            for key in (
                "seed",
                "sections",
                "spectra_per_scope",
                "per_group",
                "reals",
                "shift_images",
                "max_shift",
                "adversarial_images",
                "epsilons",
                "pgd_steps",
                "top_k",
            )
        },
        "timings": {},
    }
    artifacts: dict[str, Any] = {}
    subset = eval_set.subset(_subset(eval_set, config.per_group, config.reals, config.seed))
    keys = subset.keys()
    clean = panel.score(subset.images, keys)
    real_mask = subset.labels == 0
    thresholds = panel.thresholds({name: s[real_mask] for name, s in clean.items()})
    result["thresholds"] = thresholds
    plain_thresholds = {name: info["threshold"] for name, info in thresholds.items()}
    steps: dict[str, Callable[[], None]] = {
        "spectra": lambda: _spectra(eval_set, config, result, artifacts),
        "matching": lambda: _matching(eval_set, panel, config, result, artifacts),
        "color": lambda: _color(subset, clean, panel, plain_thresholds, result, artifacts),
        "relevance": lambda: _relevance(subset, panel, config, result, artifacts),
        "shift": lambda: _shift(subset, panel, plain_thresholds, config, result, artifacts),
        "adversarial": lambda: _adversarial(
            eval_set, panel, plain_thresholds, config, result, artifacts
        ),
    }
    for name in config.sections:
        started = time.perf_counter()
        steps[name]()
        result["timings"][name] = round(time.perf_counter() - started, 1)
        say(f"analysis: {name} in {result['timings'][name]:.0f} s")
    return result, artifacts


# ------------------------------------------------------------------ spectra


def _scopes(eval_set: EvalSet) -> dict[str, list[int]]:
    scopes: dict[str, list[int]] = {}
    for index, item in enumerate(eval_set.items):
        name = f"fake/{item.group}" if item.label == 1 else eval_set.buckets[index]
        scopes.setdefault(name, []).append(index)
    return scopes


def _spectra(
    eval_set: EvalSet, config: AnalysisConfig, result: dict[str, Any], artifacts: dict[str, Any]
) -> None:
    scopes: dict[str, spectra.ScopeSpectrum] = {}
    for name, indices in sorted(_scopes(eval_set).items()):
        images = [eval_set.images[i] for i in indices]
        scopes[name] = spectra.scope_spectrum(name, images, config.spectra_per_scope)
    reference = scopes.get("real:real") or next(
        (s for n, s in scopes.items() if n.startswith("real:")), None
    )
    table = {}
    for name, scope in scopes.items():
        row: dict[str, Any] = {"n": scope.n, "shape": list(scope.shape)}
        comparable = reference is not None and scope.shape == reference.shape
        if name.startswith("fake/") and comparable:
            row["band_difference"] = spectra.band_differences(scope, reference)
        table[name] = row
    result["spectra"] = {
        "reference": reference.name if reference else None,
        "scopes": table,
        "note": "band_difference: mean log-power difference from the reference reals (fake minus "
        "real, natural log) in the low, mid and high thirds of the azimuthal profile",
    }
    artifacts["spectra"] = scopes


# ------------------------------------------------------------------ spectral matching


def _matching(
    eval_set: EvalSet,
    panel: DetectorPanel,
    config: AnalysisConfig,
    result: dict[str, Any],
    artifacts: dict[str, Any],
) -> None:
    rng = np.random.default_rng(config.seed)
    items = eval_set.items
    all_keys = eval_set.keys()
    groups_out: dict[str, Any] = {}
    for group in fake_groups(items):
        fakes = [i for i, it in enumerate(items) if it.label == 1 and it.group == group]
        reals = group_reals(items, group)[0]
        shape = spectra.common_shape([eval_set.images[i] for i in fakes])
        same = [i for i in fakes + reals if eval_set.images[i].shape[:2] == shape]
        # Half of the group's photos are the attacker's reference, half are attacked and
        # tested; the fakes' photos and the other reals' photos are halved separately so
        # that both sides hold both classes.
        fake_photos = sorted({items[i].photo_id for i in same if items[i].label == 1})
        real_photos = sorted({items[i].photo_id for i in same} - set(fake_photos))
        reference_photos = {
            photo
            for photos in (fake_photos, real_photos)
            for photo in rng.permutation(photos)[: len(photos) // 2].tolist()
        }
        ref = [i for i in same if items[i].photo_id in reference_photos]
        test = [i for i in same if items[i].photo_id not in reference_photos]
        ref_reals = [i for i in ref if items[i].label == 0]
        ref_fakes = [i for i in ref if items[i].label == 1]
        test_reals = [i for i in test if items[i].label == 0][: config.per_group * 3]
        test_fakes = [i for i in test if items[i].label == 1][: config.per_group * 3]
        if min(len(ref_reals), len(ref_fakes), len(test_reals), len(test_fakes)) < 2:
            groups_out[group] = {"skipped": "too few images of one size on a side of the split"}
            continue
        gain = spectra.equalisation_gain(
            spectra.mean_magnitude([eval_set.images[i] for i in ref_reals[:200]]),
            spectra.mean_magnitude([eval_set.images[i] for i in ref_fakes[:200]]),
        )
        target = np.mean([spectra.ring_log_profile(eval_set.images[i]) for i in ref_reals[:200]], 0)
        attacked = [spectra.equalise(eval_set.images[i], gain, target) for i in test_fakes]
        # Clean images score through the cache (the evaluation scored them already).
        real_scores = panel.score(
            [eval_set.images[i] for i in test_reals], [all_keys[i] for i in test_reals]
        )
        before = panel.score(
            [eval_set.images[i] for i in test_fakes], [all_keys[i] for i in test_fakes]
        )
        after = panel.score(attacked)
        labels = np.r_[np.zeros(len(test_reals)), np.ones(len(test_fakes))]
        per_detector = {}
        for name in panel.names:
            auc_before = binary_metrics(labels, np.r_[real_scores[name], before[name]])["roc_auc"]
            auc_after = binary_metrics(labels, np.r_[real_scores[name], after[name]])["roc_auc"]
            per_detector[name] = {
                "auc_before": auc_before,
                "auc_after": auc_after,
                "defeated": bool(
                    auc_before is not None
                    and auc_after is not None
                    and auc_before >= spectra.DETECTED_AUC
                    and auc_after <= spectra.DEFEATED_AUC
                ),
            }
        psnr = [
            _psnr(eval_set.images[i], changed)
            for i, changed in zip(test_fakes, attacked, strict=True)
        ]
        groups_out[group] = {
            "psnr_db": float(np.mean(psnr)),
            "n_reference_real": len(ref_reals),
            "n_reference_fake": len(ref_fakes),
            "n_test_real": len(test_reals),
            "n_test_fake": len(test_fakes),
            "detectors": per_detector,
        }
        if "matching_example" not in artifacts:
            artifacts["matching_example"] = (
                group,
                eval_set.images[test_fakes[0]],
                attacked[0],
            )
    defeated = {
        name: sorted(
            g
            for g, v in groups_out.items()
            if "detectors" in v and v["detectors"][name]["defeated"]
        )
        for name in panel.names
    }
    result["matching"] = {
        "rule": f"defeated: ROC-AUC at least {spectra.DETECTED_AUC} before and at most "
        f"{spectra.DEFEATED_AUC} after equalisation; psnr_db: "
        "how much the equalisation changed the fakes (mean PSNR, original vs equalised)",
        "groups": groups_out,
        "defeated_groups": defeated,
    }


def _psnr(original: np.ndarray, changed: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (capped at 100 for identical images)."""
    error = np.mean((original.astype(np.float64) - changed.astype(np.float64)) ** 2)
    return 100.0 if error == 0 else float(10 * np.log10(255.0**2 / error))


# ------------------------------------------------------------------ colour


def _color(
    subset: EvalSet,
    clean: dict[str, np.ndarray],
    panel: DetectorPanel,
    thresholds: dict[str, float],
    result: dict[str, Any],
    artifacts: dict[str, Any],
) -> None:
    keys = subset.keys()
    transformed = {
        name: panel.score(
            [transform(image) for image in subset.images], keys, condition=f"color|{name}"
        )
        for name, transform in color.COLOR_TRANSFORMS.items()
    }
    result["color"] = {
        "n_real": int((subset.labels == 0).sum()),
        "n_fake": int((subset.labels == 1).sum()),
        "detectors": color.color_sensitivity(clean, transformed, subset.labels, thresholds),
    }


# ------------------------------------------------------------------ relevance


def _differentiable(panel: DetectorPanel) -> tuple[list[Any], dict[str, str]]:
    usable, reasons = [], {}
    for entry in panel.detectors:
        reason = differentiable_reason(entry.detector)
        if reason is None:
            usable.append(entry)
        else:
            reasons[entry.name] = reason
    return usable, reasons


def _relevance(
    subset: EvalSet,
    panel: DetectorPanel,
    config: AnalysisConfig,
    result: dict[str, Any],
    artifacts: dict[str, Any],
) -> None:
    usable, reasons = _differentiable(panel)
    labels = subset.labels
    fakes = [subset.images[i] for i in np.flatnonzero(labels == 1)[:64]]
    reals = [subset.images[i] for i in np.flatnonzero(labels == 0)[:64]]
    grey = [color.grayscale(image) for image in fakes]
    per_detector = {}
    for entry in usable:
        per_detector[entry.name] = relevance.channel_relevance(
            entry.detector, fakes, reals, grey, config.top_k
        )
    result["relevance"] = {
        "detectors": {
            name: {k: v for k, v in data.items() if k != "relevance_fake"}
            for name, data in per_detector.items()
        },
        "not_available": reasons,
    }
    artifacts["relevance"] = {
        name: np.asarray(data["relevance_fake"]) for name, data in per_detector.items()
    }


# ------------------------------------------------------------------ shift


def _shift(
    subset: EvalSet,
    panel: DetectorPanel,
    thresholds: dict[str, float],
    config: AnalysisConfig,
    result: dict[str, Any],
    artifacts: dict[str, Any],
) -> None:
    labels = subset.labels
    half = config.shift_images // 2
    chosen = [*np.flatnonzero(labels == 0)[:half], *np.flatnonzero(labels == 1)[:half]]
    # Crops need a common size: the most common shape among the chosen images.
    shape = spectra.common_shape([subset.images[i] for i in chosen])
    images = [subset.images[i] for i in chosen if subset.images[i].shape[:2] == shape]
    per_detector = {}
    for entry in panel.detectors:
        outcome = shift_consistency(
            entry.detector, images, threshold=thresholds[entry.name], max_shift=config.max_shift
        )
        per_detector[entry.name] = outcome.to_dict()
    result["shift"] = {"n_images": len(images), "detectors": per_detector}


# ------------------------------------------------------------------ adversarial


def _attack_candidates(
    eval_set: EvalSet, crop: int, count: int, seed: int, label: int
) -> list[int]:
    """Seeded indices of images of ``label`` whose sides reach the crop size."""
    indices = [
        i
        for i, item in enumerate(eval_set.items)
        if item.label == label and min(eval_set.images[i].shape[:2]) >= crop
    ]
    rng = np.random.default_rng(seed)
    return sorted(rng.permutation(indices)[:count].tolist())


def _adversarial(
    eval_set: EvalSet,
    panel: DetectorPanel,
    thresholds: dict[str, float],
    config: AnalysisConfig,
    result: dict[str, Any],
    artifacts: dict[str, Any],
) -> None:
    usable, reasons = _differentiable(panel)
    section: dict[str, Any] = {
        "epsilons": [f"{eps}/255" for eps in config.epsilons],
        "pgd_steps": config.pgd_steps,
        "not_differentiable": reasons,
        "attacked": {},
    }
    curves: dict[str, Any] = {}
    for entry in usable:
        detector = entry.detector
        crop = int(detector.input_config().crop_size)
        # A counter-forensic attack turns *detected* fakes into passing ones: the attacked
        # fakes are those of a seeded pool that the detector flags at its threshold.
        pool = _attack_candidates(eval_set, crop, 4 * config.adversarial_images, config.seed, 1)
        pool_scores = detector.predict_proba([eval_set.images[i] for i in pool]) if pool else []
        detected = [
            i for i, p in zip(pool, pool_scores, strict=True) if p >= thresholds[entry.name]
        ]
        fakes = detected[: config.adversarial_images]
        reals = _attack_candidates(eval_set, crop, config.adversarial_images, config.seed, 0)
        if not fakes or not reals:
            section["attacked"][entry.name] = {
                "skipped": f"of {len(pool)} candidate fakes of at least {crop} px, the detector "
                f"flags {len(detected)} at its threshold; {len(reals)} reals of that size"
            }
            continue
        fake_images = [eval_set.images[i] for i in fakes]
        keys = eval_set.keys()
        real_scores = panel.score([eval_set.images[i] for i in reals], [keys[i] for i in reals])
        clean_scores = panel.score(fake_images, [keys[i] for i in fakes])

        def crop_of(image: np.ndarray, detector: Any = detector) -> np.ndarray:
            top, left, height, width = adversarial.crop_box(detector, image.shape)
            return image[top : top + height, left : left + width]

        attacks: dict[str, Any] = {}
        defense: dict[str, Any] = {}
        for method in adversarial.ATTACKS:
            per_eps: dict[str, Any] = {}
            attacked_crops: dict[int, list[np.ndarray]] = {}
            for eps in config.epsilons:
                attacked = adversarial.attack(
                    detector,
                    fake_images,
                    eps,
                    method,
                    steps=config.pgd_steps,
                    seed=config.seed,
                )
                scores = panel.score(attacked)
                per_eps[str(eps)] = {
                    name: adversarial.attack_metrics(
                        clean_scores[name], scores[name], real_scores[name], thresholds[name]
                    )
                    for name in panel.names
                }
                attacked_crops[eps] = [crop_of(image) for image in attacked]
            attacks[method] = per_eps
            clean_crops = [crop_of(image) for image in fake_images] + [
                crop_of(eval_set.images[i]) for i in reals
            ]
            clean_groups = [eval_set.items[i].photo_id for i in fakes + reals]
            defense[method] = adversarial.spectral_defense(
                clean_crops,
                clean_groups,
                attacked_crops,
                [eval_set.items[i].photo_id for i in fakes],
                seed=config.seed,
            )
        baseline = {
            name: adversarial.attack_metrics(
                clean_scores[name], clean_scores[name], real_scores[name], thresholds[name]
            )
            for name in panel.names
        }
        section["attacked"][entry.name] = {
            "n_candidates": len(pool),
            "n_detected": len(detected),
            "n_fakes": len(fakes),
            "n_reals": len(reals),
            "clean": baseline,
            "attacks": attacks,
            "spectral_defense": defense,
        }
        curves[entry.name] = True
    result["adversarial"] = section
    artifacts["adversarial"] = curves


def sections_from(tokens: Sequence[str]) -> tuple[str, ...]:
    """``--only`` values (comma-separated allowed) -> section names; raises ValueError."""
    names = [part.strip() for token in tokens for part in token.split(",") if part.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown section {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return tuple(name for name in SECTIONS if name in names) or SECTIONS
