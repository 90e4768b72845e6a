"""Train, calibrate and evaluate the bundled ``warp-flow-default`` localizer.

Usage::

    nice -n 10 python scripts/build_warp_model.py --benchmark work-data/benchmark \
        --out src/fakescope/models/localization/warp-flow-default \
        --report work-data/localization/warp-report.json

Splits come from ``localization_splits(root, seed=0)`` (disjoint by photo, shared by every
localization method). Training: the train split's warps with their ground-truth flows, plus
on-the-fly warps of its pristine tiles and of the originals of its warps. Calibration: the
test-time views (flips / transposes and their combiner) and small-flow cut-off with the best
mean PSNR gain of the undo over the calibration split's warps, then the heat-map threshold
maximising pixel F1 over its warps and pristine tiles.
Test: the test split's warps, reporting the PSNR gain of the undo against the original
(whole image and inside the mask), the flow's endpoint error and the mask's pixel F1; plus what
the undo does to the test split's pristine tiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Candidate small-flow cut-offs (px) for the undo, chosen on the calibration split.
UNDO_THRESHOLDS = (0.25, 0.5, 1.0, 2.0)
#: Candidate test-time views (count, combiner), chosen with the cut-off; one or two views merge
#: the same either way.
VIEW_SETTINGS = ((1, "mean"), (2, "mean"), (4, "mean"), (4, "median"), (8, "mean"), (8, "median"))


def _load(path: Path) -> np.ndarray:
    from fakescope.io.image import load_image

    return load_image(path).pixels


def _load_mask(path: Path) -> np.ndarray:
    return _load(path)[..., 0] > 127


def _summary(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    if not array.size:
        return {"n": 0}
    return {
        "n": int(array.size),
        "mean": round(float(array.mean()), 4),
        "median": round(float(np.median(array)), 4),
        "p10": round(float(np.percentile(array, 10)), 4),
        "p90": round(float(np.percentile(array, 90)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", type=Path, default=Path("work-data/benchmark"))
    parser.add_argument(
        "--out", type=Path, default=Path("src/fakescope/models/localization/warp-flow-default")
    )
    parser.add_argument(
        "--report", type=Path, default=Path("work-data/localization/warp-report.json")
    )
    parser.add_argument("--steps", type=int, default=2600)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--mask-loss-weight", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pristine-test", type=int, default=200, help="test pristine tiles used")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="load --out instead of training"
    )
    parser.add_argument(
        "--warm-start",
        type=Path,
        default=None,
        metavar="DIR",
        help="go on training the model saved in DIR for --steps more steps",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="with --evaluate-only: redo both calibrations on the calibration split and re-save",
    )
    args = parser.parse_args(argv)

    import torch

    from fakescope.calibration.pixel import image_f1
    from fakescope.data.benchmark_splits import localization_splits
    from fakescope.localizers.warp_flow.localizer import (
        WarpFlowLocalizer,
        psnr,
        shrink_flow,
        unwarp,
    )

    torch.set_num_threads(args.threads)

    def log(message: str) -> None:
        print(message, flush=True)

    splits = localization_splits(args.benchmark, seed=0)
    train = splits["train"]
    warps = [item for item in train if item.kind == "warp" and item.flow is not None]
    pristine_paths = sorted(
        {item.image for item in train if item.kind == "pristine"}
        | {item.original for item in warps if item.original is not None}
    )
    log(f"train: {len(warps)} warps with flows, {len(pristine_paths)} pristine tiles")

    calibration = [item for item in splits["calibration"] if item.kind in ("warp", "pristine")]

    def calibrate(localizer: WarpFlowLocalizer) -> None:
        # The undo's test-time views and small-flow cut-off: those with the best mean PSNR gain
        # on the calibration split's warps (never on the test split); fewer views and a larger
        # cut-off win ties. Then the heat-map thresholds, with the chosen views.
        pairs = [
            (_load(item.image), _load(item.original))
            for item in calibration
            if item.kind == "warp" and item.original is not None
        ]
        means: dict[tuple[int, str, float], float] = {}
        for views, combine in VIEW_SETTINGS:
            localizer.set_params(test_time_views=views, view_combine=combine)
            gains: dict[float, list[float]] = {cut: [] for cut in UNDO_THRESHOLDS}
            for forged, original in pairs:
                flow = localizer.predict_flow(forged)
                before = psnr(forged, original)
                for cut in UNDO_THRESHOLDS:
                    restored = unwarp(forged, shrink_flow(flow, cut))
                    gains[cut].append(psnr(restored, original) - before)
            for cut, values in gains.items():
                means[(views, combine, cut)] = float(np.mean(values))
            best_cut = max(gains, key=lambda cut: means[(views, combine, cut)])
            log(f"{views} view(s), {combine}: {means[(views, combine, best_cut)]:.3f} dB")
        views, combine, cut = max(means, key=lambda key: (means[key], -key[0], key[2]))
        localizer.set_params(test_time_views=views, view_combine=combine, flow_threshold_px=cut)
        localizer.undo_calibration_ = {
            f"{key[0]} {key[1]} {key[2]}": round(gain, 4) for key, gain in means.items()
        }
        chosen = means[(views, combine, cut)]
        log(f"undo: {views} view(s) merged by {combine}, cut-off {cut} px ({chosen:.3f} dB)")
        localizer.calibrate(
            [_load(item.image) for item in calibration],
            [None if item.mask is None else _load_mask(item.mask) for item in calibration],
        )
        log(f"calibrated threshold {localizer.threshold:.3f} on {len(calibration)} images")

    if args.evaluate_only:
        localizer = WarpFlowLocalizer.load(args.out)
        if args.recalibrate:
            calibrate(localizer)
            localizer.save(args.out)
            log(f"saved {args.out}")
    else:
        images = [_load(item.image) for item in warps] + [_load(p) for p in pristine_paths]
        masks: list[np.ndarray | None] = [_load_mask(item.mask) for item in warps]  # type: ignore[arg-type]
        masks += [None] * len(pristine_paths)
        flows = [np.load(item.flow) for item in warps] + [None] * len(pristine_paths)
        settings = {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "mask_loss_weight": args.mask_loss_weight,
            "random_state": args.seed,
            "threads": args.threads,
        }
        if args.warm_start is not None:
            localizer = WarpFlowLocalizer.load(args.warm_start)
            localizer.set_params(**settings, warm_start=True)
        else:
            localizer = WarpFlowLocalizer(**settings)
        localizer.fit(images, masks, flows=flows, log=log)
        localizer.set_params(warm_start=False)  # a saved model starts afresh unless told
        log(f"fit: {localizer.fit_info_}")
        calibrate(localizer)
        localizer.save(args.out)
        log(f"saved {args.out}")

    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for item in splits["test"]:
        if item.kind != "warp" or item.flow is None or item.original is None:
            continue
        forged, original = _load(item.image), _load(item.original)
        true_flow = np.load(item.flow)
        true_mask = _load_mask(item.mask) if item.mask is not None else None
        result = localizer.localize(forged)
        flow = result.flow
        restored = localizer.undo_with_flow(forged, flow)
        oracle = unwarp(forged, true_flow)
        endpoint = np.hypot(*(flow - true_flow).transpose(2, 0, 1))
        before = psnr(forged, original)
        inside = true_mask if true_mask is not None and true_mask.any() else None
        rows.append(
            {
                "image": item.image.name,
                "psnr_before": before,
                "gain": psnr(restored, original) - before,
                "gain_mask": (
                    psnr(restored, original, inside) - psnr(forged, original, inside)
                    if inside is not None
                    else None
                ),
                "oracle_gain": psnr(oracle, original) - before,
                "epe_mask": float(endpoint[inside].mean()) if inside is not None else None,
                "epe_all": float(endpoint.mean()),
                "zero_flow_epe_mask": (
                    float(np.hypot(*true_flow.transpose(2, 0, 1))[inside].mean())
                    if inside is not None
                    else None
                ),
                "f1": image_f1(result.mask, true_mask) if true_mask is not None else None,
                "score": result.score,
            }
        )
    pristine_rows = []
    pristine_items = [item for item in splits["test"] if item.kind == "pristine"]
    rng = np.random.default_rng(0)
    for index in sorted(rng.permutation(len(pristine_items))[: args.pristine_test]):
        image = _load(pristine_items[int(index)].image)
        result = localizer.localize(image)
        restored = localizer.undo_with_flow(image, result.flow)
        pristine_rows.append(
            {
                "changed_share": float((restored != image).any(axis=2).mean()),
                "psnr_undo": psnr(restored, image),
                "f1": image_f1(result.mask, np.zeros(image.shape[:2], bool)),
                "score": result.score,
            }
        )

    def column(name: str, source: list[dict[str, Any]]) -> list[float]:
        return [row[name] for row in source if row[name] is not None]

    gains = column("gain", rows)
    report = {
        "localizer": "warp-flow-default",
        "split": "localization_splits(seed=0) test, kind warp",
        "params": localizer.get_params(),
        "threshold": localizer.threshold,
        "fit_info": getattr(localizer, "fit_info_", {}),
        "undo_calibration_mean_gain_db": getattr(localizer, "undo_calibration_", {}),
        "test_warps": len(rows),
        "psnr_gain_db": _summary(gains),
        "psnr_gain_in_mask_db": _summary(column("gain_mask", rows)),
        "share_improved": round(float(np.mean(np.asarray(gains) > 0)), 4) if gains else None,
        "oracle_psnr_gain_db (true flow inverted)": _summary(column("oracle_gain", rows)),
        "psnr_before_db": _summary(column("psnr_before", rows)),
        "epe_in_mask_px": _summary(column("epe_mask", rows)),
        "epe_in_mask_of_zero_flow_px": _summary(column("zero_flow_epe_mask", rows)),
        "epe_all_px": _summary(column("epe_all", rows)),
        "pixel_f1_warps": _summary(column("f1", rows)),
        "pristine_test": {
            "n": len(pristine_rows),
            "pixel_f1": _summary(column("f1", pristine_rows)),
            "undo_changed_pixel_share": _summary(column("changed_share", pristine_rows)),
            "undo_psnr_vs_input_db": _summary(column("psnr_undo", pristine_rows)),
        },
        "image_score_warps": _summary(column("score", rows)),
        "image_score_pristine": _summary(column("score", pristine_rows)),
        "eval_seconds": round(time.monotonic() - started, 1),
        "per_image": rows,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")

    log(f"\n{'metric (test split, ' + str(len(rows)) + ' warps)':<48} {'mean':>9} {'median':>9}")
    for label, key in [
        ("PSNR gain, whole image (dB)", "psnr_gain_db"),
        ("PSNR gain, inside mask (dB)", "psnr_gain_in_mask_db"),
        ("oracle gain, true flow inverted (dB)", "oracle_psnr_gain_db (true flow inverted)"),
        ("flow endpoint error in mask (px)", "epe_in_mask_px"),
        ("  same for a zero prediction (px)", "epe_in_mask_of_zero_flow_px"),
        ("pixel F1 of the mask, warps", "pixel_f1_warps"),
    ]:
        mean, median = (
            report[key].get("mean", float("nan")),
            report[key].get("median", float("nan")),
        )
        log(f"{label:<48} {mean:>9.3f} {median:>9.3f}")
    log(f"{'share of warps improved':<48} {report['share_improved']:>9.3f}")
    pristine_stats = report["pristine_test"]
    pristine_f1 = pristine_stats["pixel_f1"].get("mean", 0.0)
    changed = pristine_stats["undo_changed_pixel_share"].get("mean", 0.0)
    log(
        f"pristine ({pristine_stats['n']}): pixel F1 {pristine_f1:.3f}, "
        f"undo changes {changed:.4f} of pixels"
    )
    log(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
