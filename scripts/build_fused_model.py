#!/usr/bin/env python
"""Train the learned detectors on the benchmark, fuse them, and evaluate on unseen families.

The recipe behind the default model's choice (docs/model-card-fused.md). On a benchmark built by
``fakescope data benchmark`` (docs/dataset-layout.md):

1. **Photos are split, never tiles.** ``test`` = the ``heldout`` photos plus a seeded share of
   the ``source`` photos; ``calibration`` = a seeded share of the remaining photos; ``train`` =
   the rest. No photo is on two sides.
2. **Training data:** real tiles and *processed reals* (resized, recompressed, blurred,
   screenshots; label real: hard negatives, so that resampling alone is not "fake") of the train
   photos, against the fakes of ``--train-families`` made from the train photos. Every other
   family (and Stable Diffusion v1) is *unseen*: no candidate trains on it.
3. Each member detector (``--members``) is fitted once on the training data.
4. **Candidates:** every member alone, and the fusion of every subset of two or more members,
   whose stacker (logistic regression on member logits) is fitted on the calibration photos'
   reals, processed reals and seen-family fakes. Each candidate's threshold is set on the
   calibration photos' *real tiles* at ``--target-fpr``.
5. **Evaluation on test photos**, per family: AP, ROC-AUC, TPR at 5 % FPR of the test reals
   (Wang et al.'s protocol) and TPR/FPR at the calibrated threshold; the same after JPEG quality
   75 on both classes; the false-positive rate on processed reals at the calibrated threshold.
   ``sd-v1`` is the genuine Stable Diffusion v1 samples in ``--sd`` (centre crops of the tile size).
   The bundled ``--baseline`` model is scored on the same sets.
6. **Choice:** the candidate with the best mean AP over unseen families among those whose
   processed-real FPR is within ``--max-processed-fpr`` (the best overall when none is). It is
   saved as a calibrated model folder (``--out``), with ``metrics.json``; the whole evaluation
   goes to ``--report`` and a Markdown summary to ``--markdown``.

Usage::

    python scripts/build_fused_model.py work-data/benchmark --out work-data/fused/model \\
        --report work-data/fused/report.json --markdown work-data/fused/report.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import fakescope
from cross_generator_table import parse_params  # sibling script: same -p syntax
from fakescope.calibration.model import CalibratedModel
from fakescope.calibration.threshold import calibrate_threshold
from fakescope.data.benchmark_splits import (
    FORGERIES,
    UNCONDITIONAL,
    centre_crop,
    decode,
    images_in,
    photo_of,
    read_roles,
    split_photos,
)
from fakescope.data.perturb import parse_spec
from fakescope.detectors import Detector, create
from fakescope.detectors.onnx_export import export_onnx, torch_members
from fakescope.evaluation.metrics import binary_metrics
from fakescope.fusion.stacking import FusedDetector
from fakescope.models import load_model

DEFAULT_MEMBERS = ("spectral", "npr", "universal-cnn")
DEFAULT_TRAIN_FAMILIES = ("ae-transposed", "ae-bilinear", "sr-gan")
JPEG_SPEC = "jpeg:75"

Images = list[np.ndarray]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def capped(paths: list[Path], limit: int, seed: int) -> list[Path]:
    if len(paths) <= limit:
        return paths
    keep = np.random.default_rng(seed).permutation(len(paths))[:limit]
    return [paths[i] for i in sorted(keep)]


class Splits:
    """The benchmark's images, split by photo into train / calibration / test."""

    def __init__(self, root: Path, test_share: float, calib_share: float, seed: int) -> None:
        roles = read_roles(root)
        source = [p for p, role in roles.items() if role == "source"]
        test = split_photos(source, test_share, seed) | {
            p for p, role in roles.items() if role == "heldout"
        }
        rest = [p for p, role in roles.items() if role in ("generator", "source") and p not in test]
        calib = split_photos(rest, calib_share, seed + 1)
        self.side = {p: "test" if p in test else "calib" if p in calib else "train" for p in roles}
        self.root = root

    def of(self, paths: Sequence[Path], side: str) -> list[Path]:
        return [p for p in paths if self.side.get(photo_of(p)) == side]

    def reals(self, side: str) -> list[Path]:
        roles = ("generator", "source", "heldout")
        return self.of([p for r in roles for p in images_in(self.root / "real" / r)], side)

    def processed(self, side: str) -> list[Path]:
        return self.of(images_in(self.root / "real" / "processed-real"), side)

    def families(self) -> list[str]:
        found = sorted(
            d.name for d in (self.root / "fake").iterdir() if d.is_dir() and d.name not in FORGERIES
        )
        if (self.root / UNCONDITIONAL / "1_fake").is_dir():
            found.append(UNCONDITIONAL)
        return found

    def fakes(self, family: str, side: str) -> list[Path]:
        if family == UNCONDITIONAL:  # samples have no source photo: a seeded split by index
            paths = images_in(self.root / family / "1_fake")
            order = np.random.default_rng(0).permutation(len(paths))
            n_test = round(0.3 * len(paths))
            chosen = set(order[:n_test]) if side == "test" else set(order[n_test:])
            return [p for i, p in enumerate(paths) if i in chosen]
        return self.of(images_in(self.root / "fake" / family), side)

    def size_matched_reals(self, family: str, side: str) -> list[Path]:
        """Reals to test ``family`` against: tiles, or the size-matched crops of DCGAN."""
        if family == UNCONDITIONAL:
            return self.of(images_in(self.root / family / "0_real"), side)
        return self.reals(side)


def jpeg75(images: Images, seed: int) -> Images:
    chain = parse_spec(JPEG_SPEC)
    return [chain(pixels, seed + i).pixels for i, pixels in enumerate(images)]


class ScoreTable:
    """Member scores per named image set, computed once: candidates only re-weight them."""

    def __init__(self, members: dict[str, Detector]) -> None:
        self.members = members
        self.scores: dict[str, np.ndarray] = {}

    def add(self, name: str, images: Images) -> None:
        columns = []
        for label, member in self.members.items():
            started = time.perf_counter()
            columns.append(np.asarray(member.predict_proba(images), dtype=np.float64))
            rate = len(images) / max(time.perf_counter() - started, 1e-9)
            log(f"  scored {name} with {label}: {len(images)} images, {rate:.1f} img/s")
        self.scores[name] = np.stack(columns, axis=1).reshape(len(images), len(columns))

    def columns(self, name: str, labels: Sequence[str]) -> np.ndarray:
        order = list(self.members)
        return self.scores[name][:, [order.index(label) for label in labels]]


class Candidate:
    """A member alone or a fusion of members, with its calibrated threshold."""

    def __init__(self, labels: Sequence[str], table: ScoreTable, calib_labels: np.ndarray) -> None:
        self.labels = list(labels)
        self.name = "+".join(self.labels)
        self.fused: FusedDetector | None = None
        if len(self.labels) > 1:
            self.fused = FusedDetector.from_members(
                [table.members[label] for label in self.labels], labels=self.labels
            )
            self.fused.fit_stacker(table.columns("calib", self.labels), calib_labels)
        self.table = table
        self.calibration = calibrate_threshold(self.score("calib-real"))

    def score(self, image_set: str) -> np.ndarray:
        columns = self.table.columns(image_set, self.labels)
        return self.fused.fuse_scores(columns) if self.fused else columns[:, 0]

    def detector(self) -> Detector:
        return self.fused if self.fused else self.table.members[self.labels[0]]


def evaluate(
    score: Callable[[str], np.ndarray],
    threshold: float,
    test_sets: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    """Metrics for every ``{row: (real set, fake set)}`` plus the processed-real FPR."""
    rows: dict[str, Any] = {}
    for row, (real_set, fake_set) in test_sets.items():
        negatives, positives = score(real_set), score(fake_set)
        labels = np.r_[np.zeros(len(negatives)), np.ones(len(positives))]
        metrics = binary_metrics(labels, np.r_[negatives, positives], threshold)
        rows[row] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()}
    for name in ("processed-real", "processed-real+jpeg75"):
        rows[name] = {"fpr": round(float(np.mean(score(name) >= threshold)), 4)}
    return rows


def summarise(rows: dict[str, Any], seen: Sequence[str], unseen: Sequence[str]) -> dict[str, Any]:
    def mean(keys: Sequence[str], metric: str) -> float | None:
        values = [rows[k][metric] for k in keys if k in rows and rows[k].get(metric) is not None]
        return round(float(np.mean(values)), 4) if values else None

    jpeg_unseen = [f"{k}+jpeg75" for k in unseen]
    return {
        "seen_ap": mean(seen, "ap"),
        "unseen_ap": mean(unseen, "ap"),
        "unseen_tpr_at_fpr_5": mean(unseen, "tpr_at_fpr_5"),
        "unseen_ap_jpeg75": mean(jpeg_unseen, "ap"),
        "processed_real_fpr": rows["processed-real"]["fpr"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--members", nargs="+", default=list(DEFAULT_MEMBERS))
    parser.add_argument("-p", "--param", action="append", default=[], help="DETECTOR.KEY=VALUE")
    parser.add_argument("--train-families", nargs="+", default=list(DEFAULT_TRAIN_FAMILIES))
    parser.add_argument("--test-share", type=float, default=0.3)
    parser.add_argument("--calib-share", type=float, default=0.25)
    parser.add_argument("--max-per-class", type=int, default=800)
    parser.add_argument("--target-fpr", type=float, default=0.05)
    parser.add_argument("--max-processed-fpr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sd", type=Path, default=Path("../shared/data/sd-v1"))
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--baseline", default="spectral-default")
    parser.add_argument("--out", type=Path, required=True, help="folder for the chosen model")
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    parser.add_argument(
        "--bundle",
        type=Path,
        default=None,
        help="also write an inference-only copy here (torch networks as ONNX, no torch weights)",
    )
    parser.add_argument(
        "--crop-grid",
        type=int,
        default=1,
        help="torch members score the mean over an N x N grid of crops (evaluation and model)",
    )
    args = parser.parse_args(argv)
    started_all = time.perf_counter()
    params = parse_params(args.param)
    splits = Splits(args.benchmark, args.test_share, args.calib_share, args.seed)
    families = splits.families()
    unknown = sorted(set(args.train_families) - set(families))
    if unknown:
        parser.error(f"unknown train families {unknown}; the benchmark has {families}")
    seen = list(args.train_families)
    unseen = [f for f in families if f not in seen] + (["sd-v1"] if args.sd.is_dir() else [])

    # -- training data -----------------------------------------------------------------------
    processed_train = splits.processed("train")
    real_train = processed_train + capped(
        splits.reals("train"), args.max_per_class - len(processed_train), args.seed
    )
    fake_train = capped(
        [p for f in seen for p in splits.fakes(f, "train")], args.max_per_class, args.seed
    )
    train_paths = real_train + fake_train
    train_images = decode(train_paths)
    train_labels = [0] * len(real_train) + [1] * len(fake_train)
    log(
        f"train: {len(real_train)} reals ({len(processed_train)} processed), "
        f"{len(fake_train)} fakes of {seen}"
    )

    members: dict[str, Detector] = {}
    fit_seconds: dict[str, float] = {}
    for name in args.members:
        started = time.perf_counter()
        member = create(name, **params.get(name, {}))
        last = [0.0]

        def progress(step: int, total: int, label: str = name, marker: list[float] = last) -> None:
            if time.perf_counter() - marker[0] > 30 or step == total:
                marker[0] = time.perf_counter()
                log(f"  {label}: step {step}/{total}")

        member.fit(train_images, train_labels, on_progress=progress)
        if "crop_grid" in member.get_params():
            member.set_params(crop_grid=args.crop_grid)
        fit_seconds[name] = round(time.perf_counter() - started, 1)
        members[name] = member
        log(f"fitted {name} in {fit_seconds[name]} s")
    del train_images

    # -- image sets, scored once per member --------------------------------------------------
    table = ScoreTable(members)
    calib_real = decode(splits.reals("calib"))
    calib_processed = decode(splits.processed("calib"))
    calib_fake = decode([p for f in seen for p in splits.fakes(f, "calib")])
    table.add("calib-real", calib_real)
    table.add("calib", calib_real + calib_processed + calib_fake)
    calib_labels = np.r_[np.zeros(len(calib_real) + len(calib_processed)), np.ones(len(calib_fake))]

    image_sets: dict[str, Images] = {
        "test-real": decode(splits.reals("test")),
        "processed-real": decode(splits.processed("test")),
        f"{UNCONDITIONAL}-real": decode(splits.size_matched_reals(UNCONDITIONAL, "test")),
    }
    for family in families:
        image_sets[family] = decode(splits.fakes(family, "test"))
    if args.sd.is_dir():
        image_sets["sd-v1"] = [centre_crop(px, args.tile) for px in decode(images_in(args.sd))]
    test_sets: dict[str, tuple[str, str]] = {}
    for name in [f for f in [*families, "sd-v1"] if f in image_sets]:
        real_set = f"{UNCONDITIONAL}-real" if name == UNCONDITIONAL else "test-real"
        test_sets[name] = (real_set, name)
        test_sets[f"{name}+jpeg75"] = (f"{real_set}+jpeg75", f"{name}+jpeg75")
    for name, images in list(image_sets.items()):
        image_sets[f"{name}+jpeg75"] = jpeg75(images, args.seed)
    for name, images in image_sets.items():
        table.add(name, images)

    # -- candidates --------------------------------------------------------------------------
    labels = list(members)
    subsets = [
        list(c) for k in range(1, len(labels) + 1) for c in itertools.combinations(labels, k)
    ]
    results: dict[str, Any] = {}
    candidates: dict[str, Candidate] = {}
    for subset in subsets:
        candidate = Candidate(subset, table, calib_labels)
        candidates[candidate.name] = candidate
        rows = evaluate(candidate.score, candidate.calibration.threshold, test_sets)
        results[candidate.name] = {
            "threshold": round(candidate.calibration.threshold, 6),
            "summary": summarise(rows, seen, unseen),
            "rows": rows,
        }
        log(f"{candidate.name}: {results[candidate.name]['summary']}")

    baseline = load_model(args.baseline)
    baseline_scores = {name: baseline.score(images) for name, images in image_sets.items()}
    baseline_rows = evaluate(baseline_scores.__getitem__, baseline.calibration.threshold, test_sets)
    results[f"baseline:{args.baseline}"] = {
        "threshold": round(baseline.calibration.threshold, 6),
        "summary": summarise(baseline_rows, seen, unseen),
        "rows": baseline_rows,
    }

    eligible = [
        name
        for name in candidates
        if results[name]["summary"]["processed_real_fpr"] <= args.max_processed_fpr
    ] or list(candidates)
    chosen = max(eligible, key=lambda name: results[name]["summary"]["unseen_ap"] or 0.0)
    log(f"chosen: {chosen}")

    report = {
        "fakescope_version": fakescope.__version__,
        "python": platform.python_version(),
        "benchmark": str(args.benchmark),
        "seed": args.seed,
        "members": {name: members[name].get_params(deep=False) for name in members},
        "fit_seconds": fit_seconds,
        "train_families": seen,
        "unseen_families": unseen,
        "n_train": {
            "real": len(real_train),
            "processed_real": len(processed_train),
            "fake": len(fake_train),
        },
        "n_calibration": {
            "real": len(calib_real),
            "processed_real": len(calib_processed),
            "fake": len(calib_fake),
        },
        "n_test": {name: len(images) for name, images in image_sets.items()},
        "target_fpr": args.target_fpr,
        "chosen": chosen,
        "candidates": results,
        "total_seconds": round(time.perf_counter() - started_all, 1),
    }
    winner = candidates[chosen]
    model = CalibratedModel(
        detector=winner.detector(),
        calibration=winner.calibration,
        info={
            "name": args.bundle.name if args.bundle else chosen,
            "recipe": "scripts/build_fused_model.py",
            "train_families": seen,
            "unseen_families": unseen,
            "summary": results[chosen]["summary"],
        },
    )
    model.save(args.out)
    (args.out / "metrics.json").write_text(json.dumps(results[chosen], indent=2) + "\n")
    if args.bundle:
        bundle(model, args.out, args.bundle)
        log(f"inference-only copy in {args.bundle}")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    text = to_markdown(report)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


def bundle(model: CalibratedModel, model_dir: Path, target: Path) -> None:
    """Copy ``model_dir`` to ``target`` with every torch network exported to ONNX (checked
    against torch) and the torch weights left out: scanning then needs onnxruntime only."""
    for _, member, folder in torch_members(model.detector, model_dir):
        export_onnx(member, folder, check=True)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(model_dir, target, ignore=shutil.ignore_patterns("*.safetensors"))
    loaded = CalibratedModel.load(target)  # must load and score without the weights
    probe = [np.full((64, 64, 3), 128, np.uint8)]
    if not np.isfinite(loaded.score(probe)).all():
        raise RuntimeError(f"{target}: the bundled model does not score")


def to_markdown(report: dict[str, Any]) -> str:
    seen, unseen = report["train_families"], report["unseen_families"]
    lines = [
        f"Trained on {', '.join(seen)}; unseen: {', '.join(unseen)}. Threshold at "
        f"{report['target_fpr']:.0%} FPR on calibration reals. Chosen: `{report['chosen']}`.",
        "",
        "| candidate | seen AP | unseen AP | unseen TPR@5%FPR | unseen AP, JPEG 75 "
        "| processed-real FPR |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in report["candidates"].items():
        s = result["summary"]
        cells = [s["seen_ap"], s["unseen_ap"], s["unseen_tpr_at_fpr_5"], s["unseen_ap_jpeg75"]]
        text = " | ".join("-" if v is None else f"{v:.3f}" for v in cells)
        lines.append(f"| {name} | {text} | {s['processed_real_fpr']:.1%} |")
    chosen = report["candidates"][report["chosen"]]["rows"]
    lines += [
        "",
        f"Per family, `{report['chosen']}` (AP / ROC-AUC / TPR@5%FPR / TPR and FPR at the "
        "calibrated threshold):",
        "",
        "| family | seen | AP | ROC-AUC | TPR@5%FPR | TPR@thr | FPR@thr | AP after JPEG 75 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in [*seen, *unseen]:
        row, jpeg = chosen.get(family), chosen.get(f"{family}+jpeg75")
        if not row:
            continue
        values = [row["ap"], row["roc_auc"], row["tpr_at_fpr_5"], row["tpr"], row["fpr"]]
        text = " | ".join("-" if v is None else f"{v:.3f}" for v in values)
        jpeg_ap = "-" if not jpeg or jpeg["ap"] is None else f"{jpeg['ap']:.3f}"
        lines.append(f"| {family} | {'yes' if family in seen else 'no'} | {text} | {jpeg_ap} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
