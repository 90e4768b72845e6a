"""Train, calibrate and evaluate the bundled segmentation localizer (``segmentation-default``).

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python scripts/build_segmentation_model.py \\
        --benchmark work-data/benchmark \\
        --out src/fakescope/models/localization/segmentation-default \\
        --report work-data/localization/segmentation-report.json

Splits come from :func:`fakescope.data.benchmark_splits.localization_splits` (seed 0, disjoint
by photo): the model trains on the train split (every forgery kind and the pristine tiles, plus
forgeries made on the fly from the train split's pristine tiles), the threshold is calibrated on
the calibration split, and the test split is scored: per kind, mean per-image pixel F1 and IoU
over tampered images at the calibrated threshold, pixel ROC-AUC, image-level AP (that kind's
forgeries against the pristine test tiles) and F1 over all images. These numbers are for fast
iteration; ``fakescope eval --task localize`` is the reference evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.calibration.pixel import image_f1
from fakescope.data.benchmark_splits import LocalizationItem, localization_splits
from fakescope.io.image import load_image
from fakescope.localizers.segmentation import SegmentationLocalizer

#: Pixels drawn per image for the pooled pixel ROC-AUC (bounds memory and time).
AUC_PIXELS_PER_IMAGE = 2048


def read_items(items: list[LocalizationItem]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    images, masks = [], []
    for item in items:
        images.append(load_image(item.image).pixels)
        masks.append(None if item.mask is None else load_image(item.mask).pixels[..., 0] > 127)
    return images, masks


def image_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    union = np.count_nonzero(predicted | truth)
    return 1.0 if union == 0 else np.count_nonzero(predicted & truth) / union


def evaluate(
    localizer: SegmentationLocalizer, items: list[LocalizationItem], seed: int = 0
) -> dict[str, Any]:
    """Per-kind and overall metrics of ``localizer`` on ``items`` at its threshold."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    threshold = localizer.threshold
    rows: list[dict[str, Any]] = []
    for item in items:
        image = load_image(item.image).pixels
        truth = (
            np.zeros(image.shape[:2], dtype=bool)
            if item.mask is None
            else load_image(item.mask).pixels[..., 0] > 127
        )
        heat = localizer.predict_heatmap(image)
        flagged = heat >= threshold
        pick = rng.integers(0, heat.size, AUC_PIXELS_PER_IMAGE)
        rows.append(
            {
                "kind": item.kind,
                "f1": image_f1(flagged, truth),
                "iou": image_iou(flagged, truth),
                "score": localizer.image_score(heat),
                "heat_sample": heat.ravel()[pick],
                "truth_sample": truth.ravel()[pick],
            }
        )
    pristine = [r for r in rows if r["kind"] == "pristine"]
    report: dict[str, Any] = {"threshold": threshold, "kinds": {}}
    for kind in sorted({r["kind"] for r in rows} - {"pristine"}):
        tampered = [r for r in rows if r["kind"] == kind]
        heat = np.concatenate([r["heat_sample"] for r in tampered])
        truth = np.concatenate([r["truth_sample"] for r in tampered])
        scores = [r["score"] for r in tampered + pristine]
        labels = [1] * len(tampered) + [0] * len(pristine)
        report["kinds"][kind] = {
            "n": len(tampered),
            "f1_tampered": float(np.mean([r["f1"] for r in tampered])),
            "iou_tampered": float(np.mean([r["iou"] for r in tampered])),
            "pixel_auc": float(roc_auc_score(truth, heat))
            if 0 < truth.sum() < truth.size
            else None,
            "image_ap": float(average_precision_score(labels, scores)) if pristine else None,
            "f1_all": float(np.mean([r["f1"] for r in tampered + pristine])),
        }
    report["pristine"] = {
        "n": len(pristine),
        "f1": float(np.mean([r["f1"] for r in pristine])) if pristine else None,
    }
    forged = [r for r in rows if r["kind"] != "pristine"]
    report["all"] = {
        "n": len(rows),
        "f1_all": float(np.mean([r["f1"] for r in rows])),
        "f1_tampered": float(np.mean([r["f1"] for r in forged])) if forged else None,
        "image_ap": float(
            average_precision_score(
                [r["kind"] != "pristine" for r in rows], [r["score"] for r in rows]
            )
        )
        if forged and pristine
        else None,
    }
    return report


def print_table(report: dict[str, Any]) -> None:
    def fmt(value: float | None) -> str:
        return "  -  " if value is None else f"{value:.3f}"

    print(f"threshold {report['threshold']:.3f}")
    print(f"{'kind':<16} {'n':>5} {'F1':>6} {'IoU':>6} {'pxAUC':>6} {'imgAP':>6} {'F1all':>6}")
    for kind, row in report["kinds"].items():
        print(
            f"{kind:<16} {row['n']:>5} {fmt(row['f1_tampered']):>6} {fmt(row['iou_tampered']):>6} "
            f"{fmt(row['pixel_auc']):>6} {fmt(row['image_ap']):>6} {fmt(row['f1_all']):>6}"
        )
    print(f"{'pristine':<16} {report['pristine']['n']:>5} {fmt(report['pristine']['f1']):>6}")
    row = report["all"]
    print(
        f"{'all':<16} {row['n']:>5} {fmt(row['f1_tampered']):>6} {'':>6} {'':>6} "
        f"{fmt(row['image_ap']):>6} {fmt(row['f1_all']):>6}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", type=Path, default=Path("work-data/benchmark"))
    parser.add_argument(
        "--out", type=Path, default=Path("src/fakescope/models/localization/segmentation-default")
    )
    parser.add_argument(
        "--report", type=Path, default=Path("work-data/localization/segmentation-report.json")
    )
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="override a hyper-parameter, e.g. --param epochs=2 --param 'widths=[8,16]'",
    )
    parser.add_argument(
        "--warm-start",
        type=Path,
        default=None,
        metavar="DIR",
        help="go on training the model saved in DIR (its params, overridden by --param)",
    )
    parser.add_argument(
        "--evaluate-only", action="store_true", help="load --out instead of training"
    )
    args = parser.parse_args(argv)

    splits = localization_splits(args.benchmark, seed=args.seed)
    for name, items in splits.items():
        print(f"{name}: {len(items)} images", flush=True)
    if args.evaluate_only:
        localizer = SegmentationLocalizer.load(args.out)
    else:
        params = {"random_state": args.seed, "threads": args.threads}
        for override in args.param:
            name, _, value = override.partition("=")
            params[name] = json.loads(value)
        if args.warm_start is not None:
            localizer = SegmentationLocalizer.load(args.warm_start)
            params["warm_start"] = True
            localizer.set_params(**params)
        else:
            localizer = SegmentationLocalizer(**params)
        localizer.check_params()
        images, masks = read_items(splits["train"])
        start = time.monotonic()

        def progress(done: int, total: int) -> None:
            if done % 25 == 0 or done == total:
                elapsed = time.monotonic() - start
                eta = elapsed / done * (total - done)
                print(f"step {done}/{total}  {elapsed:.0f}s  eta {eta:.0f}s", flush=True)

        localizer.fit(images, masks, on_progress=progress)
        print(f"trained in {time.monotonic() - start:.0f}s", flush=True)
        localizer.save(args.out)
        del images, masks
        calibration_images, calibration_masks = read_items(splits["calibration"])
        localizer.calibrate(calibration_images, calibration_masks)
        localizer.save(args.out)
        print(f"calibrated threshold {localizer.threshold:.3f}; saved {args.out}", flush=True)
    report = evaluate(localizer, splits["test"], seed=args.seed)
    report["params"] = {k: v for k, v in localizer.get_params().items()}
    report["split"] = {"benchmark": str(args.benchmark), "seed": args.seed, "part": "test"}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2, default=list) + "\n")
    print_table(report)
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
