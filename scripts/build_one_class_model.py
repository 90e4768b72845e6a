"""Build the bundled ``one-class-default`` localizer and its report, from pristine data only.

Fits :class:`~fakescope.localizers.one_class.localizer.OneClassLocalizer` on the pristine tiles
of the train split of ``localization_splits`` (no forgery is read for fitting), sets the
threshold at a 1 % pixel false-positive rate on the calibration split's pristine tiles, then
evaluates on the test split, per forgery kind: mean pixel F1 and IoU over the tampered images
at that threshold, pixel ROC-AUC (tampered images' pixels), image-level AP (that kind's forged
images against the test split's pristine ones) and mean F1 over all those images (a pristine
image scores 1 iff nothing is flagged).

    python scripts/build_one_class_model.py --benchmark work-data/benchmark \
        --out src/fakescope/models/localization/one-class-default \
        --report work-data/localization/one-class-report.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score

from fakescope.calibration.pixel import image_f1
from fakescope.data.benchmark_splits import LocalizationItem, localization_splits
from fakescope.localizers.one_class.localizer import OneClassLocalizer

#: Pixels per image drawn (seeded) for the pixel ROC-AUC, to keep memory flat.
AUC_PIXELS_PER_IMAGE = 2048


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def read_mask(path: Path | None, shape: tuple[int, int]) -> np.ndarray:
    if path is None:
        return np.zeros(shape, dtype=bool)
    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 127


def evaluate(
    localizer: OneClassLocalizer, items: list[LocalizationItem], seed: int
) -> dict[str, dict[str, float]]:
    """Per-kind metrics on ``items`` (forged and pristine) at the localizer's threshold."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {}
    for item in items:
        image = read_rgb(item.image)
        truth = read_mask(item.mask, image.shape[:2])
        result = localizer.localize(image)
        flat_heat, flat_truth = result.heatmap.ravel(), truth.ravel()
        pick = rng.choice(flat_heat.size, min(flat_heat.size, AUC_PIXELS_PER_IMAGE), replace=False)
        # The localizer's own mask: pixels over the threshold, emptied when the image score
        # is below the image threshold (detect, then localize).
        predicted = result.mask
        union = np.count_nonzero(predicted | truth)
        rows.setdefault(item.kind, []).append(
            {
                "f1": image_f1(predicted, truth),
                "iou": np.count_nonzero(predicted & truth) / union if union else 1.0,
                "score": result.score,
                "heat": flat_heat[pick],
                "truth": flat_truth[pick],
                "flagged": float(predicted.mean()),
                "folder": item.image.parent.name,
            }
        )
    pristine = rows.get("pristine", [])
    report: dict[str, dict[str, float]] = {}
    for kind, kind_rows in sorted(rows.items()):
        if kind == "pristine":
            continue
        heat = np.concatenate([r["heat"] for r in kind_rows])
        truth = np.concatenate([r["truth"] for r in kind_rows])
        scores = [r["score"] for r in kind_rows] + [r["score"] for r in pristine]
        labels = [1] * len(kind_rows) + [0] * len(pristine)
        report[kind] = {
            "n_tampered": len(kind_rows),
            "n_pristine": len(pristine),
            "pixel_f1_tampered": float(np.mean([r["f1"] for r in kind_rows])),
            "iou_tampered": float(np.mean([r["iou"] for r in kind_rows])),
            "pixel_roc_auc": float(roc_auc_score(truth, heat)) if truth.any() else float("nan"),
            "image_ap": float(average_precision_score(labels, scores)) if pristine else 0.0,
            "f1_all_images": float(np.mean([r["f1"] for r in kind_rows + pristine])),
        }
    if pristine:
        report["pristine"] = {
            "n_pristine": len(pristine),
            "f1_pristine": float(np.mean([r["f1"] for r in pristine])),
            "flagged_pixel_share": float(np.mean([r["flagged"] for r in pristine])),
        }
        # Pristine tiles of the forged photos (real/source) and of unseen photos
        # (real/heldout) behave differently; report both.
        for folder in sorted({r["folder"] for r in pristine}):
            rows_in = [r for r in pristine if r["folder"] == folder]
            report[f"pristine/{folder}"] = {
                "n_pristine": len(rows_in),
                "f1_pristine": float(np.mean([r["f1"] for r in rows_in])),
                "flagged_pixel_share": float(np.mean([r["flagged"] for r in rows_in])),
                "mean_score": float(np.mean([r["score"] for r in rows_in])),
            }
    return report


def print_table(report: dict[str, dict[str, float]]) -> None:
    header = f"{'kind':<16}{'n':>5}{'F1 tamp':>9}{'IoU':>7}{'px AUC':>8}{'img AP':>8}{'F1 all':>8}"
    print(header)
    for kind, row in report.items():
        if kind.startswith("pristine"):
            continue
        print(
            f"{kind:<16}{row['n_tampered']:>5}{row['pixel_f1_tampered']:>9.3f}"
            f"{row['iou_tampered']:>7.3f}{row['pixel_roc_auc']:>8.3f}{row['image_ap']:>8.3f}"
            f"{row['f1_all_images']:>8.3f}"
        )
    if "pristine" in report:
        row = report["pristine"]
        print(
            f"pristine: n={row['n_pristine']}, F1 (nothing flagged) {row['f1_pristine']:.3f}, "
            f"flagged pixels {row['flagged_pixel_share']:.4f}"
        )
    for kind, row in report.items():
        if kind.startswith("pristine/"):
            print(
                f"  {kind}: n={row['n_pristine']}, F1 {row['f1_pristine']:.3f}, flagged pixels "
                f"{row['flagged_pixel_share']:.4f}, mean image score {row['mean_score']:.3f}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the saved localizer")
    parser.add_argument("--report", type=Path, required=True, help="JSON report path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fpr", type=float, default=0.01, help="pixel FPR on pristine images")
    parser.add_argument("--no-relative", action="store_true", help="score blocks globally")
    parser.add_argument("--content", action="store_true", help="add the content features")
    parser.add_argument(
        "--eval-split",
        choices=("test", "calibration"),
        default="test",
        help="calibration: compare design variants without touching the test split",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    splits = localization_splits(args.benchmark, seed=args.seed)
    train = [item for item in splits["train"] if item.kind == "pristine"]
    calibration = [item for item in splits["calibration"] if item.kind == "pristine"]
    if not train or not calibration:
        print("the benchmark has no pristine tiles in the train or calibration split")
        return 1
    localizer = OneClassLocalizer(
        relative=not args.no_relative, content=args.content, random_state=args.seed
    )
    localizer.fit([read_rgb(item.image) for item in train], [None] * len(train))
    localizer.calibrate_pristine(
        [read_rgb(item.image) for item in calibration], false_positive_rate=args.fpr
    )
    fit_seconds = time.perf_counter() - started
    print(f"fitted on {len(train)} pristine tiles; threshold {localizer.threshold:.4f}")
    localizer.save(args.out)
    report = evaluate(localizer, splits[args.eval_split], args.seed)
    print_table(report)
    payload = {
        "localizer": "one-class",
        "model": str(args.out),
        "params": localizer.get_params(),
        "threshold": localizer.threshold,
        "image_threshold": localizer.image_threshold,
        "threshold_rule": f"{args.fpr:.0%} pixel FPR on calibration-split pristine tiles",
        "splits": "localization_splits(benchmark, seed) train/calibration/test",
        "seed": args.seed,
        "n_train_pristine": len(train),
        "n_calibration_pristine": len(calibration),
        "fit_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "evaluated_on": args.eval_split,
        "test" if args.eval_split == "test" else "calibration": report,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out} and {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
